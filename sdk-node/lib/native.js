'use strict';
// The one place that talks to libnet: it finds the library, checks its ABI
// version, and binds every function of include/net.h with koffi. The
// declarations themselves (status codes, constants, types, prototypes) are
// generated from the header into lib/native.gen.js. Loaded once per JS thread
// (the main thread, each worker of the async pool, and the log puller).

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');
const nativePath = require('./native-path');
const { STATUS, CONSTANTS, ENUMS, defineTypes, PROTOTYPES } = require('./native.gen');

/** The libnet ABI version this SDK was written for. */
const SDK_ABI_VERSION = 2;

/**
 * The bundled libnet for this platform: the @netmesh/<os>-<arch>-gnu package
 * npm installed beside netmesh, else lib/native/ of a development pack
 * (lib/native-path.js).
 */
const BUNDLED_LIBRARY_PATH = nativePath.bundledLibraryPath();

function resolveLibraryPath() {
  // Workers of the async pool and the log puller load exactly the library the
  // main thread loaded.
  const { isMainThread, workerData } = require('node:worker_threads');
  if (!isMainThread && workerData && typeof workerData.netmeshLibraryPath === 'string') {
    return workerData.netmeshLibraryPath;
  }
  const override = process.env.NET_LIBRARY_PATH;
  if (override) {
    return path.resolve(override);
  }
  if (!fs.existsSync(BUNDLED_LIBRARY_PATH)) {
    throw new Error(
      `${nativePath.missingLibraryHint()} (In a checkout: npm pack runs ` +
        'scripts/bundle-native.js, which copies libnet into lib/native/.)',
    );
  }
  return BUNDLED_LIBRARY_PATH;
}

const libraryPath = resolveLibraryPath();

let lib;
try {
  lib = koffi.load(libraryPath);
} catch (err) {
  throw new Error(`netmesh: cannot load libnet from ${libraryPath}: ${err.message}`, {
    cause: err,
  });
}

// The types of include/net.h (opaque handles, structs, aliases), so that the
// prototypes read like the header. Idempotent per thread.
defineTypes(koffi);

/** The koffi functions, keyed by their C name. */
const fns = Object.create(null);

// The ABI check comes first, before any other symbol is looked up, so that a
// mismatched library gets this message rather than a missing-symbol error.
fns.net_abi_version = lib.func('uint32_t net_abi_version(void)');
fns.net_version = lib.func('const char *net_version(void)');
const abiVersion = fns.net_abi_version();
if (abiVersion !== SDK_ABI_VERSION) {
  throw new Error(
    `netmesh: ABI version mismatch: this SDK was written for libnet ABI version ${SDK_ABI_VERSION}, ` +
      `but ${libraryPath} (libnet ${fns.net_version()}) implements ABI version ${abiVersion}`,
  );
}

for (const proto of PROTOTYPES) {
  const name = /([A-Za-z_]\w*)\(/.exec(proto)[1];
  if (!(name in fns)) fns[name] = lib.func(proto);
}

/** The calling thread's last libnet failure detail (read right after the call). */
function lastErrorMessage() {
  return fns.net_last_error_message() || '';
}

/** The UTF-8 text of a libnet buffer, without releasing it. */
function peekText(bytes) {
  const len = Number(bytes.len);
  if (!bytes.ptr || len === 0) return '';
  const view = koffi.decode(bytes.ptr, 'uint8_t', len);
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('utf8');
}

/** A zeroed `net_error_t` for a blocking call (koffi fills it back in place). */
function errorSlot() {
  return { status: 0, message: { ptr: null, len: 0 } };
}

/**
 * The message a failed blocking call wrote to its `net_error_t` (which is
 * released); '' when the call wrote none.
 */
function takeError(error) {
  if (!error || !error.message || !error.message.ptr) return '';
  try {
    return peekText(error.message);
  } finally {
    fns.net_error_clear(error);
  }
}

/**
 * Copies the bytes of a filled `net_bytes_t` into a new Buffer and releases
 * the libnet allocation (which zeroes it). Always frees, even on error.
 */
function takeBytes(bytes) {
  try {
    const len = Number(bytes.len);
    if (!bytes.ptr || len === 0) {
      return Buffer.alloc(0);
    }
    const copy = koffi.decode(bytes.ptr, 'uint8_t', len);
    return Buffer.from(copy.buffer, copy.byteOffset, copy.byteLength);
  } finally {
    fns.net_bytes_free(bytes);
  }
}

module.exports = {
  koffi,
  fns,
  libraryPath,
  BUNDLED_LIBRARY_PATH,
  SDK_ABI_VERSION,
  STATUS,
  CONSTANTS,
  ENUMS,
  lastErrorMessage,
  takeBytes,
  errorSlot,
  takeError,
};
