'use strict';
// Checks of JS argument *types* (TypeError/RangeError). Lengths and contents
// are libnet's to judge: it answers with an InvalidArgumentError naming the
// argument.

const U64_MAX = (1n << 64n) - 1n;

/** A Uint8Array (Buffer included) or ArrayBuffer, as a Uint8Array. */
function bytes(value, name) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new TypeError(`${name} must be a Buffer, Uint8Array or ArrayBuffer`);
}

/** Like `bytes`, also accepting a string (encoded as UTF-8). */
function bytesOrString(value, name) {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return bytes(value, name);
  }
  throw new TypeError(`${name} must be a string, Buffer, Uint8Array or ArrayBuffer`);
}

/** A u64 given as a bigint or a non-negative safe integer, as a bigint. */
function u64(value, name) {
  let v;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else throw new TypeError(`${name} must be a bigint (or a safe integer number)`);
  if (v < 0n || v > U64_MAX) throw new RangeError(`${name} must fit in 64 unsigned bits`);
  return v;
}

/** An unsigned integer number of `bits` bits. */
function uint(value, bits, name) {
  const max = 2 ** bits - 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TypeError(`${name} must be an integer between 0 and ${max}`);
  }
  return value;
}

module.exports = { bytes, bytesOrString, u64, uint };
