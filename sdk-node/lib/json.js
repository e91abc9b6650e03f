'use strict';
// JSON.parse for libnet's JSON outputs, with every integer as a bigint: ids,
// nanosecond timestamps and sequence numbers are u64 and may exceed 2^53,
// where a JS number would silently round. Numbers with a fraction or an
// exponent stay numbers. Strings are decoded by JSON.parse itself.

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

function parseJsonBigInt(text) {
  let i = 0;
  const fail = (what) => {
    throw new SyntaxError(`netmesh: bad JSON from libnet (${what} at ${i})`);
  };
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else return;
    }
  };
  const expect = (ch) => {
    if (text[i] !== ch) fail(`expected ${ch}`);
    i++;
  };
  const word = (w, v) => {
    if (text.startsWith(w, i)) {
      i += w.length;
      return v;
    }
    return fail('unexpected token');
  };
  const string = () => {
    const start = i;
    expect('"');
    while (i < text.length) {
      const ch = text[i];
      if (ch === '\\') i += 2;
      else if (ch === '"') {
        i++;
        return JSON.parse(text.slice(start, i));
      } else i++;
    }
    return fail('unterminated string');
  };
  const number = () => {
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail('unexpected token');
    i = NUMBER.lastIndex;
    return m[1] || m[2] ? Number(m[0]) : BigInt(m[0]);
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        const key = string();
        ws();
        expect(':');
        Object.defineProperty(obj, key, { value: value(), enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        expect('}');
        return obj;
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        expect(']');
        return arr;
      }
    }
    if (c === '"') return string();
    if (c === 't') return word('true', true);
    if (c === 'f') return word('false', false);
    if (c === 'n') return word('null', null);
    return number();
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

module.exports = { parseJsonBigInt };
