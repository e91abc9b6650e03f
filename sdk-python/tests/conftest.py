"""Shared fixtures: the Net v0.11 test vectors and a few helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

HERE = Path(__file__).resolve().parent
SDK_DIR = HERE.parent


def repo_root() -> Path:
    env = os.environ.get("NET_ROOT")
    if env:
        return Path(env)
    return SDK_DIR.parent


def vectors_dir() -> Path:
    for candidate in (repo_root() / "tests" / "vectors", SDK_DIR.parent / "tests" / "vectors"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("Net test vectors not found: set NET_ROOT to the repository root")


def _load(name: str) -> Dict[str, Any]:
    with open(vectors_dir() / name, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def identity_vectors() -> Dict[str, Any]:
    return _load("identity.json")


@pytest.fixture(scope="session")
def token_vectors() -> Dict[str, Any]:
    return _load("token.json")


@pytest.fixture(scope="session")
def envelope_vectors() -> Dict[str, Any]:
    return _load("envelope.json")


@pytest.fixture(scope="session")
def channel_vectors() -> Dict[str, Any]:
    return _load("channels.json")


def h(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


SEED_A = bytes(range(32))
SEED_B = b"\x42" * 32
SEED_C = b"\xff" * 32


@pytest.fixture
def redex_dir():
    """A fresh directory for persistent RedEX files, removed afterwards."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="netmesh-redex-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
