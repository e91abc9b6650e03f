"""Builds the netmesh platform wheel.

The wheel bundles libnet.so (as netmesh/_native/libnet.so) and a cffi cdef
generated from include/net.h (as netmesh/_cdef.py), so installing it needs no
compiler. Inputs, in order of preference:

  library: $NET_LIBRARY_PATH, $NET_STAGE/lib/libnet.so, ../target/stage/lib/libnet.so
  header:  $NET_STAGE/include/net.h, $NET_ROOT/include/net.h, ../include/net.h

(`make stage` at the repository root produces the stage.)
"""

from __future__ import annotations

import importlib.util
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


def header_path():
    return _first_existing(
        [
            _env_path("NET_STAGE", "include", "net.h"),
            _env_path("NET_ROOT", "include", "net.h"),
            os.path.join(REPO, "include", "net.h"),
        ],
        "net.h",
    )


def _cdefgen():
    spec = importlib.util.spec_from_file_location(
        "_netmesh_cdefgen", os.path.join(HERE, "netmesh", "_cdefgen.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithNative(build_py):
    """build_py, plus the bundled library and the generated cdef."""

    def run(self):
        super().run()
        pkg = os.path.join(self.build_lib, "netmesh")
        with open(header_path(), encoding="utf-8") as f:
            cdef = _cdefgen().header_to_cdef(f.read())
        with open(os.path.join(pkg, "_cdef.py"), "w", encoding="utf-8") as f:
            f.write('"""Generated from include/net.h at build time. Do not edit."""\n\n')
            f.write(f"CDEF = {cdef!r}\n")
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
