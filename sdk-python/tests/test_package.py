"""The installed wheel: where it loads from, versions, ABI check, parity."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import netmesh
from netmesh import _ffi
from netmesh.errors import ERROR_CLASSES, NetError, Status

from conftest import SDK_DIR, repo_root


def test_imported_from_site_packages_not_the_source_tree():
    pkg = Path(netmesh.__file__).resolve().parent
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert pkg.parent in site, f"netmesh imported from {pkg}, not site-packages {site}"
    assert SDK_DIR.resolve() not in pkg.parents


def test_uses_the_bundled_library():
    assert "NET_LIBRARY_PATH" not in os.environ
    bundled = Path(netmesh.__file__).resolve().parent / "_native" / "libnet.so"
    assert bundled.is_file()
    assert Path(_ffi.library_path).resolve() == bundled
    # The cdef was generated at build time, not from a header at import.
    import netmesh._cdef as cdef

    assert "net_identity_sign" in cdef.CDEF


def test_py_typed_is_shipped():
    assert (Path(netmesh.__file__).parent / "py.typed").is_file()


def test_versions():
    assert re.fullmatch(r"\d+\.\d+\.\d+", netmesh.version())
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", netmesh.__version__)
    assert netmesh.abi_version() == 2 == netmesh.NET_ABI_VERSION


def test_abi_mismatch_is_refused_with_both_versions_named():
    with pytest.raises(ImportError) as info:
        _ffi.check_abi_version(1, 2, "/x/libnet.so")
    msg = str(info.value)
    assert "ABI version 2" in msg and "ABI version 1" in msg and "/x/libnet.so" in msg
    with pytest.raises(ImportError, match="NET_ABI_VERSION 7"):
        _ffi.check_abi_version(2, 7, "/x/libnet.so")
    _ffi.check_abi_version(2, 2, "/x/libnet.so")


def _import_in_subprocess(env_extra):
    env = dict(os.environ, **env_extra)
    code = "import netmesh"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=os.getcwd()
    )


def test_missing_override_library_is_a_clear_import_error(tmp_path):
    r = _import_in_subprocess({"NET_LIBRARY_PATH": str(tmp_path / "nope.so")})
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "cannot load libnet" in r.stderr
    assert "NET_LIBRARY_PATH" in r.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler to build a fake libnet")
def test_library_with_another_abi_version_is_refused_at_import(tmp_path):
    src = tmp_path / "fake.c"
    src.write_text("unsigned int net_abi_version(void) { return 1; }\n")
    so = tmp_path / "libfake.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    r = _import_in_subprocess({"NET_LIBRARY_PATH": str(so)})
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert "written for libnet ABI version 2" in r.stderr
    assert "implements ABI version 1" in r.stderr


def test_override_library_is_honoured(tmp_path):
    copy = tmp_path / "libnet-dev.so"
    shutil.copy(_ffi.BUNDLED_LIBRARY_PATH, copy)
    code = (
        "from netmesh import _ffi, channel_hash; print(_ffi.library_path); "
        "print(channel_hash('sensors/lidar')); "
        "print(any('libnet-dev.so' in l for l in open('/proc/self/maps')))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, NET_LIBRARY_PATH=str(copy)),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(copy), str(0xE5D8), "True"]


# -- status codes ----------------------------------------------------------


def _header() -> str:
    for p in (
        Path(os.environ.get("NET_STAGE", "/nonexistent")) / "include" / "net.h",
        repo_root() / "include" / "net.h",
    ):
        if p.is_file():
            return p.read_text()
    pytest.skip("net.h not found")


def test_every_status_code_maps_to_a_class():
    header = _header()
    codes = re.findall(r"^\s*(NET_[A-Z_]+)\s*=\s*(-?\d+),", header, re.M)
    assert len(codes) >= 20
    for name, value in codes:
        assert Status[name[len("NET_"):]] == int(value)
        if int(value) < 0:
            cls = ERROR_CLASSES[int(value)]
            assert issubclass(cls, NetError) and cls is not NetError
            err = netmesh.errors.error_for_status(int(value), "detail")
            assert type(err) is cls and err.status == int(value) and err.message == "detail"
    assert len(set(ERROR_CLASSES.values())) == len(ERROR_CLASSES), "one class per code"


def test_unknown_status_is_a_plain_net_error():
    err = netmesh.errors.error_for_status(-999, "odd")
    assert type(err) is NetError and err.status == -999
    assert "odd" in str(err)


def test_parity_every_header_name_appears_in_the_sdk_sources():
    """Mirrors scripts/check-sdk-parity.py for this SDK (sources, not the
    generated cdef)."""
    header = _header()
    names = set(re.findall(r"\b(net_[a-z0-9_]+)\s*\(", header))
    names |= set(re.findall(r"\b(NET_[A-Z0-9_]+)\b", header)) - {"NET_H"}
    src_dir = SDK_DIR / "netmesh"
    if not src_dir.is_dir():
        pytest.skip("source tree not available")
    text = "\n".join(
        p.read_text() for p in src_dir.glob("*.py") if p.name not in ("_cdef.py",)
    )
    missing = sorted(n for n in names if not re.search(r"\b" + n + r"\b", text))
    assert not missing, f"names in net.h missing from sdk-python/netmesh: {missing}"


def test_exception_hierarchy_shape():
    from netmesh import errors as e

    assert issubclass(e.InvalidArgumentError, ValueError)
    assert issubclass(e.ChannelNameError, ValueError)
    for cls in (
        e.TokenInvalidSignatureError,
        e.TokenNotYetValidError,
        e.TokenExpiredError,
        e.TokenDelegationExhaustedError,
        e.TokenDelegationNotAllowedError,
        e.TokenNotAuthorizedError,
        e.TokenInvalidFormatError,
        e.TokenZeroTtlError,
    ):
        assert issubclass(cls, e.TokenError)
    for cls in (
        e.EnvelopeUnknownVersionError,
        e.EnvelopeInvalidLengthError,
        e.EnvelopeInvalidSignerKeyError,
        e.EnvelopeInvalidAttestationError,
        e.EnvelopeSealOpenFailedError,
        e.EnvelopeOriginHashMismatchError,
    ):
        assert issubclass(cls, e.EnvelopeError)
    assert set(netmesh.__all__) <= set(dir(netmesh))
