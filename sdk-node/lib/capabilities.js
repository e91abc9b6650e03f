'use strict';
// Capability sets and filters between their camelCase JavaScript form and
// libnet's JSON (WIRE.md §10.4 for sets, snake_case keys). Keys are
// converted both ways (snake_case input passes unchanged); the enumerations
// (GPU vendor, accelerator type, modality) are the lowercase binding names
// of MESH2.md §3.5 in JavaScript and the capitalised variant names on the
// wire. An unknown enumeration name throws MeshCapabilitiesError (v0.11's
// binding turned it into "Unknown" or "Text").

const { errorFor } = require('./errors');
const { NET_ERR_MESH_CAPABILITIES } = require('./native').STATUS;

/** Binding name -> wire name, per enumeration (aliases included). */
const GPU_VENDORS = { unknown: 'Unknown', nvidia: 'Nvidia', amd: 'Amd', intel: 'Intel', apple: 'Apple', qualcomm: 'Qualcomm' };
const ACCELERATOR_TYPES = { unknown: 'Unknown', tpu: 'Tpu', npu: 'Npu', fpga: 'Fpga', asic: 'Asic', dsp: 'Dsp' };
const MODALITIES = {
  text: 'Text',
  image: 'Image',
  audio: 'Audio',
  video: 'Video',
  code: 'Code',
  embedding: 'Embedding',
  'tool-use': 'ToolUse',
  tool_use: 'ToolUse',
  tooluse: 'ToolUse',
};

function capabilitiesError(message) {
  return errorFor(NET_ERR_MESH_CAPABILITIES, message);
}

/** `memoryMb` -> `memory_mb`, `fp16TflopsX10` -> `fp16_tflops_x10`; snake_case stays. */
function snakeKey(key) {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `memory_mb` -> `memoryMb`, `parameters_b_x10` -> `parametersBX10`. */
function camelKey(key) {
  return key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** Every object key of `value` renamed by `rename`, recursively; bigints made numbers when exact. */
function renameKeys(value, rename) {
  if (Array.isArray(value)) return value.map((v) => renameKeys(v, rename));
  if (isPlainObject(value)) {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[rename(k)] = renameKeys(v, rename);
    return out;
  }
  if (typeof value === 'bigint' && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(value);
  }
  return value;
}

/** The wire name of the binding name `name` (any case) in `table`. */
function toWire(table, what, name) {
  if (typeof name !== 'string') return name; // libnet names the bad type
  const wire = table[name.toLowerCase()];
  if (wire === undefined) {
    const known = [...new Set(Object.keys(table))].join(', ');
    throw capabilitiesError(`unknown ${what} ${JSON.stringify(name)} (known: ${known})`);
  }
  return wire;
}

/** The canonical binding name of a wire name. */
function fromWire(table, name) {
  if (name === 'ToolUse') return 'tool-use';
  const lower = typeof name === 'string' ? name.toLowerCase() : name;
  return table[lower] === name ? lower : name;
}

/** Applies `f` to `obj[key]` when present. */
function mapKey(obj, key, f) {
  if (isPlainObject(obj) && obj[key] !== undefined && obj[key] !== null) obj[key] = f(obj[key]);
}

function eachItem(list, f) {
  return Array.isArray(list) ? list.map(f) : list;
}

/** The enumerations of a snake_case set, each converted by `vendor`, `accel` and `modality`. */
function mapEnums(set, vendor, accel, modality) {
  const gpu = (g) => {
    mapKey(g, 'vendor', vendor);
    return g;
  };
  mapKey(set, 'hardware', (hw) => {
    mapKey(hw, 'gpu', gpu);
    mapKey(hw, 'additional_gpus', (list) => eachItem(list, gpu));
    mapKey(hw, 'accelerators', (list) =>
      eachItem(list, (a) => {
        mapKey(a, 'accel_type', accel);
        return a;
      }),
    );
    return hw;
  });
  mapKey(set, 'models', (list) =>
    eachItem(list, (m) => {
      mapKey(m, 'modalities', (mods) => eachItem(mods, modality));
      return m;
    }),
  );
  return set;
}

/** A capability set (camelCase or snake_case, lowercase enumeration names) as net_mesh_announce's JSON. */
function capabilitiesToWire(caps) {
  if (!isPlainObject(caps)) throw new TypeError('capabilities must be an object');
  return mapEnums(
    renameKeys(caps, snakeKey),
    (v) => toWire(GPU_VENDORS, 'GPU vendor', v),
    (v) => toWire(ACCELERATOR_TYPES, 'accelerator type', v),
    (v) => toWire(MODALITIES, 'modality', v),
  );
}

/** A capability set as libnet writes it (integers as bigints) in its camelCase form. */
function capabilitiesFromWire(json) {
  const set = mapEnums(
    renameKeys(json, (k) => k),
    (v) => fromWire(GPU_VENDORS, v),
    (v) => fromWire(ACCELERATOR_TYPES, v),
    (v) => fromWire(MODALITIES, v),
  );
  return renameKeys(set, camelKey);
}

/** A query (`{ filter, scope, weights }`, filter keys camelCase or snake_case) as libnet's JSON. */
function queryToWire(query) {
  if (query == null) return {};
  const out = { ...query };
  if (query.filter != null) out.filter = renameKeys(query.filter, snakeKey);
  return out;
}

/** A capability filter (camelCase or snake_case) as libnet's JSON; null stays null. */
function filterToWire(filter) {
  return filter == null ? filter : renameKeys(filter, snakeKey);
}

module.exports = { capabilitiesToWire, capabilitiesFromWire, queryToWire, filterToWire };
