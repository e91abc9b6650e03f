'use strict';
// Channel names: validation and the 16-bit channel hash.

const { fns, STATUS } = require('./native');
const { check } = require('./calls');
const args = require('./args');

// Reused output slot for net_channel_hash (one per JS thread; calls are synchronous).
const hashOut = new Uint16Array(1);

/**
 * The 16-bit hash of a valid channel name (low 16 bits of XXH3-64 of its UTF-8).
 * @throws {ChannelNameError} when the name breaks the naming rules
 */
function channelHash(name) {
  const b = args.bytesOrString(name, 'name');
  check(fns.net_channel_hash(b, b.byteLength, hashOut));
  return hashOut[0];
}

/**
 * Checks a channel name; returns nothing when valid.
 * @throws {ChannelNameError} naming the rule broken
 */
function validateChannel(name) {
  const b = args.bytesOrString(name, 'name');
  check(fns.net_channel_validate(b, b.byteLength));
}

/** Whether a channel name is valid (false on ChannelNameError; other errors throw). */
function isValidChannel(name) {
  const b = args.bytesOrString(name, 'name');
  const status = fns.net_channel_validate(b, b.byteLength);
  if (status === STATUS.NET_ERR_CHANNEL_INVALID_NAME) return false;
  check(status);
  return true;
}

/** A channel given as a hash (0..65535) or a name, as its hash. */
function channelArg(channel, name = 'channel') {
  if (typeof channel === 'number') return args.uint(channel, 16, name);
  return channelHash(channel);
}

module.exports = { channelHash, validateChannel, isValidChannel, channelArg };
