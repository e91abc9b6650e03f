"""Builds the netmesh platform wheel.

The wheel bundles libnet.so (as netmesh/_native/libnet.so) beside the cffi
cdef generated from include/net.h (netmesh/_cdef.py, committed: see
scripts/gen-sdk-bindings.py), so installing it needs no compiler. The library,
in order of preference:

  $NET_LIBRARY_PATH, $NET_STAGE/lib/libnet.so, ../target/stage/lib/libnet.so

(`make stage` at the repository root produces the stage.)
"""

from __future__ import annotations

import os
import shutil
import sysconfig

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _first_existing(candidates, what):
    for path in candidates:
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    tried = "\n  ".join(p for p in candidates if p)
    raise SystemExit(f"netmesh build: {what} not found; tried:\n  {tried}\n(run `make stage` at the repository root)")


def _env_path(var, *parts):
    value = os.environ.get(var)
    return os.path.join(value, *parts) if value else None


def library_path():
    return _first_existing(
        [
            os.environ.get("NET_LIBRARY_PATH"),
            _env_path("NET_STAGE", "lib", "libnet.so"),
            os.path.join(REPO, "target", "stage", "lib", "libnet.so"),
        ],
        "libnet.so",
    )


class BuildPyWithNative(build_py):
    """build_py, plus the bundled library."""

    def run(self):
        super().run()
        pkg = os.path.join(self.build_lib, "netmesh")
        native = os.path.join(pkg, "_native")
        os.makedirs(native, exist_ok=True)
        shutil.copy2(library_path(), os.path.join(native, "libnet.so"))


class PlatformWheel(bdist_wheel):
    """A py3-none-<platform> wheel: no Python ABI dependency (cffi ABI
    mode), but the bundled libnet.so is platform code."""

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
    cmdclass={"build_py": BuildPyWithNative, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
