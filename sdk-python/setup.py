"""Builds the netmesh platform wheel and its source distribution.

The wheel bundles libnet.so (as netmesh/_native/libnet.so) beside the cffi
cdef generated from include/net.h (netmesh/_cdef.py, committed: see
scripts/gen-sdk-bindings.py), so installing it needs no compiler. The library,
in order of preference:

  $NET_LIBRARY_PATH, $NET_STAGE/lib/libnet.so, ../target/stage/lib/libnet.so,
  else built from the Rust sources with cargo (the source distribution carries
  them under libnet/; a checkout has them in ..), then stripped.

`make dist` at the repository root builds the wheel from the stripped release
library and retags it manylinux with auditwheel (packaging/dist-python.sh).

The version is the crate's (Cargo.toml, the one place it is set); the built
package's netmesh/_version.py is rewritten to it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The Rust sources: in a source distribution, libnet/ (packaging/dist-python.sh
# puts them there); in a checkout, the repository root.
CRATE_DIRS = [os.path.join(HERE, "libnet"), REPO]


def crate_dir():
    """The directory holding libnet's Cargo.toml, or None."""
    for path in CRATE_DIRS:
        if os.path.isfile(os.path.join(path, "Cargo.toml")) and os.path.isdir(os.path.join(path, "src")):
            return path
    return None


def crate_version():
    """The [package] version of libnet's Cargo.toml."""
    crate = crate_dir()
    if crate is None:
        raise SystemExit(f"netmesh build: libnet's Cargo.toml not found in {' or '.join(CRATE_DIRS)}")
    with open(os.path.join(crate, "Cargo.toml"), encoding="utf-8") as f:
        match = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M)
    if match is None:
        raise SystemExit(f"netmesh build: no version in {crate}/Cargo.toml")
    return match.group(1)


def _env_path(var, *parts):
    value = os.environ.get(var)
    return os.path.join(value, *parts) if value else None


def _build_from_source():
    """cargo build --release --lib in the crate; returns the stripped libnet.so."""
    crate = crate_dir()
    if crate is None or shutil.which("cargo") is None:
        return None
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "build", "cargo-target")
    print(f"netmesh build: no prebuilt libnet; building it from {crate} with cargo (several minutes)")
    subprocess.run(
        ["cargo", "build", "--release", "--lib", "--locked", "--manifest-path", os.path.join(crate, "Cargo.toml")],
        check=True,
        env={**os.environ, "CARGO_TARGET_DIR": target},
    )
    built = os.path.join(target, "release", "libnet.so")
    stripped = os.path.join(HERE, "build", "libnet.stripped.so")
    os.makedirs(os.path.dirname(stripped), exist_ok=True)
    if shutil.which("strip"):
        subprocess.run(["strip", "--strip-unneeded", "-o", stripped, built], check=True)
    else:
        shutil.copy2(built, stripped)
    return stripped


def library_path():
    candidates = [
        os.environ.get("NET_LIBRARY_PATH"),
        _env_path("NET_STAGE", "lib", "libnet.so"),
        os.path.join(REPO, "target", "stage", "lib", "libnet.so"),
    ]
    for path in candidates:
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    built = _build_from_source()
    if built:
        return built
    tried = "\n  ".join(p for p in candidates if p)
    raise SystemExit(
        f"netmesh build: libnet.so not found; tried:\n  {tried}\n"
        "and no Rust sources with cargo to build it (install Rust, or run `make stage` "
        "at the repository root)"
    )


class BuildPyWithNative(build_py):
    """build_py, plus the bundled library and the version."""

    def run(self):
        super().run()
        pkg = os.path.join(self.build_lib, "netmesh")
        native = os.path.join(pkg, "_native")
        os.makedirs(native, exist_ok=True)
        shutil.copy2(library_path(), os.path.join(native, "libnet.so"))
        with open(os.path.join(pkg, "_version.py"), "w", encoding="utf-8") as f:
            f.write(
                '"""The netmesh package version (the libnet release it bundles)."""\n\n'
                f'__version__ = "{crate_version()}"\n'
            )


class PlatformWheel(bdist_wheel):
    """A py3-none-<platform> wheel: no Python ABI dependency (cffi ABI
    mode), but the bundled libnet.so is platform code. `make dist` retags it
    manylinux_2_<glibc> with auditwheel."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        plat = os.environ.get("NET_WHEEL_PLATFORM") or sysconfig.get_platform()
        return "py3", "none", plat.replace("-", "_").replace(".", "_")


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(
    version=crate_version(),
    cmdclass={"build_py": BuildPyWithNative, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
