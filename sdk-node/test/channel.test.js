'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const { channelHash, validateChannel, isValidChannel, ChannelNameError } = netmesh;
const { vectors } = require('./helpers');

const cv = vectors('channels');

test('channel hashes', () => {
  assert.ok(cv.hashes.length >= 6);
  for (const h of cv.hashes) {
    assert.equal(channelHash(h.name), Number(h.hash_u16), h.name);
    assert.equal(channelHash(Buffer.from(h.name)), Number(h.hash_u16), h.name);
    assert.equal(typeof channelHash(h.name), 'number');
  }
});

test('channel name validation', () => {
  for (const v of cv.name_validation) {
    assert.equal(isValidChannel(v.name), v.valid, v.label);
    if (v.valid) {
      validateChannel(v.name);
      assert.equal(typeof channelHash(v.name), 'number');
    } else {
      assert.throws(() => validateChannel(v.name), (e) => {
        assert.ok(e instanceof ChannelNameError, `${v.label}: ${e}`);
        assert.equal(e.code, 'NET_ERR_CHANNEL_INVALID_NAME');
        assert.equal(e.status, -40);
        assert.ok(e.message.length > 0, `${v.label}: empty message`);
        return true;
      });
      assert.throws(() => channelHash(v.name), ChannelNameError, v.label);
    }
  }
});

test('the error message names the rule broken', () => {
  assert.throws(() => validateChannel('a b'), /' '/);
  assert.throws(() => validateChannel('a//b'), /\/\//);
});

test('non-UTF-8 bytes are an invalid argument, not a channel-name error', () => {
  assert.throws(() => channelHash(Buffer.from([0xff, 0xfe])), netmesh.InvalidArgumentError);
  assert.throws(() => channelHash(42), TypeError);
});
