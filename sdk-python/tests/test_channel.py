"""Channel names and hashes against the v0.11 vectors."""

from __future__ import annotations

import pytest

from netmesh import ChannelNameError, InvalidArgumentError, channel_hash, is_valid_channel, validate_channel
from netmesh._ffi import lib


def test_hashes(channel_vectors):
    assert channel_vectors["hashes"]
    for v in channel_vectors["hashes"]:
        assert channel_hash(v["name"]) == int(v["hash_u16"], 16), v["name"]
        assert channel_hash(v["name"].encode()) == int(v["hash_u16"], 16)
        validate_channel(v["name"])


def test_name_validation(channel_vectors):
    for v in channel_vectors["name_validation"]:
        name = v["name"]
        if v["valid"]:
            validate_channel(name)
            assert is_valid_channel(name)
            channel_hash(name)
        else:
            with pytest.raises(ChannelNameError) as info:
                validate_channel(name)
            assert info.value.status == lib.NET_ERR_CHANNEL_INVALID_NAME
            assert info.value.message, v["label"]
            assert isinstance(info.value, ValueError)
            assert not is_valid_channel(name)
            with pytest.raises(ChannelNameError):
                channel_hash(name)


def test_not_utf8_is_invalid_argument():
    with pytest.raises(InvalidArgumentError) as info:
        validate_channel(b"a\xffb")
    assert "UTF-8" in info.value.message
    with pytest.raises(InvalidArgumentError):
        channel_hash("a\udcffb")
    with pytest.raises(TypeError):
        channel_hash(42)  # type: ignore[arg-type]
