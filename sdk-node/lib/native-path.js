'use strict';
// Where the bundled libnet is: the per-platform package npm chose by os/cpu
// (an optional dependency of netmesh: @netmesh/<os>-<arch>-gnu, holding
// libnet.so), else lib/native/ inside netmesh itself (a development pack,
// scripts/bundle-native.js). Nothing here loads the library.

const fs = require('node:fs');
const path = require('node:path');

/** The file name of libnet on this platform. */
function libraryFileName() {
  switch (process.platform) {
    case 'darwin':
      return 'libnet.dylib';
    case 'win32':
      return 'net.dll';
    default:
      return 'libnet.so';
  }
}

/** The npm package carrying libnet for this platform (docs/packaging.md). */
const PLATFORM_PACKAGE = `@netmesh/${process.platform}-${process.arch}-gnu`;

/** The copy of libnet inside netmesh's own lib/native/ (development packs). */
const LOCAL_LIBRARY_PATH = path.join(__dirname, 'native', libraryFileName());

/**
 * The bundled libnet: the platform package's file when that package is
 * installed, else LOCAL_LIBRARY_PATH (which may not exist: the caller says
 * what is missing).
 */
function bundledLibraryPath() {
  try {
    return require.resolve(`${PLATFORM_PACKAGE}/${libraryFileName()}`);
  } catch {
    return LOCAL_LIBRARY_PATH;
  }
}

/** What to tell a user whose install has no libnet for this platform. */
function missingLibraryHint() {
  return (
    `netmesh: no libnet for ${process.platform}-${process.arch}: the optional package ` +
    `${PLATFORM_PACKAGE} is not installed (npm skips it on other platforms, and with ` +
    `--omit=optional). Reinstall without --omit=optional, or set NET_LIBRARY_PATH ` +
    `to a libnet shared library.`
  );
}

module.exports = {
  libraryFileName,
  PLATFORM_PACKAGE,
  LOCAL_LIBRARY_PATH,
  bundledLibraryPath,
  missingLibraryHint,
  exists: (p) => fs.existsSync(p),
};
