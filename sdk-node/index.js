'use strict';
// netmesh: the Node.js SDK of Net, over the bundled libnet (include/net.h).

const native = require('./lib/native');
const errors = require('./lib/errors');
const { Identity, rawHandle } = require('./lib/identity');
const { Token, Scope } = require('./lib/token');
const envelope = require('./lib/envelope');
const channel = require('./lib/channel');
const pool = require('./lib/pool');
const redex = require('./lib/redex');
const cortex = require('./lib/cortex');
const netdb = require('./lib/netdb');
const mesh = require('./lib/mesh');
const causal = require('./lib/causal');
const bus = require('./lib/bus');
const behavior = require('./lib/behavior');
const compute = require('./lib/compute');
const computeGroup = require('./lib/compute-group');
const asyncCalls = require('./lib/async');
const log = require('./lib/log');
const finalize = require('./lib/finalize');

const { CONSTANTS, STATUS } = native;

// libnet's warnings reach process.emitWarning (NETMESH_LOG_LEVEL, setLogLevel, setLogHook).
log.init();

/** The libnet version ("MAJOR.MINOR.PATCH"). */
function version() {
  return native.fns.net_version();
}

/** The ABI version libnet implements (checked against ABI_VERSION at load). */
function abiVersion() {
  return native.fns.net_abi_version();
}

module.exports = {
  // behavior plane
  Rules: behavior.Rules,
  Safety: behavior.Safety,
  Permit: behavior.Permit,
  LoadBalancer: behavior.LoadBalancer,
  Selection: behavior.Selection,
  // identity
  Identity,
  // tokens
  Token,
  Scope,
  // envelopes
  sealEnvelope: envelope.sealEnvelope,
  sealEnvelopeAsync: envelope.sealEnvelopeAsync,
  openEnvelope: envelope.openEnvelope,
  openEnvelopeAsync: envelope.openEnvelopeAsync,
  x25519PublicKey: envelope.x25519PublicKey,
  // channels
  channelHash: channel.channelHash,
  validateChannel: channel.validateChannel,
  isValidChannel: channel.isValidChannel,
  // RedEX
  Redex: redex.Redex,
  RedexFile: redex.RedexFile,
  RedexTail: redex.RedexTail,
  WAIT_FOREVER: CONSTANTS.NET_WAIT_FOREVER,
  // event bus
  Bus: bus.Bus,
  RedisStreamDedup: bus.RedisStreamDedup,
  // mesh
  Mesh: mesh.Mesh,
  MeshStream: mesh.MeshStream,
  genesisLink: causal.genesisLink,
  nextCausalLink: causal.nextCausalLink,
  causalFrame: causal.causalFrame,
  // compute
  Compute: compute.Compute,
  ComputeGroup: computeGroup.ComputeGroup,
  Daemon: compute.Daemon,
  Delivery: compute.Delivery,
  // CortEX
  Model: cortex.Model,
  ModelKind: cortex.ModelKind,
  Tasks: cortex.Tasks,
  Memories: cortex.Memories,
  Watch: cortex.Watch,
  // NetDB
  NetDB: netdb.NetDB,
  // libnet's log
  setLogLevel: log.setLogLevel,
  getLogLevel: log.getLogLevel,
  setLogHook: log.setLogHook,
  defaultLogHook: log.defaultLogHook,
  LOG_LEVELS: log.LOG_LEVELS,
  // versions
  version,
  abiVersion,
  ABI_VERSION: native.SDK_ABI_VERSION,
  // sizes
  SEED_LEN: CONSTANTS.NET_SEED_LEN,
  PUBLIC_KEY_LEN: CONSTANTS.NET_PUBLIC_KEY_LEN,
  SIGNATURE_LEN: CONSTANTS.NET_SIGNATURE_LEN,
  TOKEN_SIZE: CONSTANTS.NET_TOKEN_SIZE,
  ENVELOPE_SIZE: CONSTANTS.NET_ENVELOPE_SIZE,
  CHAIN_LINK_LEN: CONSTANTS.NET_CHAIN_LINK_LEN,
  X25519_KEY_LEN: CONSTANTS.NET_X25519_KEY_LEN,
  // status codes and constants of include/net.h, by their C names
  Status: STATUS,
  Constants: CONSTANTS,
  // errors: NetError and one subclass per NET_ERR_* code (and family), generated
  // from include/net.h (lib/errors.gen.js)
  statusName: errors.statusName,
  NetError: errors.NetError,
  ...errors.ERROR_CLASSES,
  /**
   * Low-level access for tests, benchmarks and debugging; not a stable API.
   * `fns` are the raw koffi functions (C names), `rawHandle(identity)` the
   * bigint pointer behind an Identity, Redex, RedexFile, RedexTail, Tasks,
   * Memories, Watch, Mesh, MeshStream, Bus or RedisStreamDedup,
   * `poolEvents` emits 'job' per call run on the worker pool, `callEvents`
   * 'call' per attempt of a blocking call (koffi async), `leaks()` the
   * finalizer's counters, `waits()` the wait budget's state.
   */
  internal: {
    koffi: native.koffi,
    fns: native.fns,
    libraryPath: native.libraryPath,
    bundledLibraryPath: native.BUNDLED_LIBRARY_PATH,
    lastErrorMessage: native.lastErrorMessage,
    errorFor: errors.errorFor,
    rawHandle: (value) => {
      const b = bus.rawBusHandle(value);
      if (b !== undefined) return b;
      const m = mesh.rawMeshHandle(value);
      if (m !== undefined) return m;
      const k = compute.rawComputeHandle(value);
      if (k !== undefined) return k;
      const c = cortex.rawCortexHandle(value);
      if (c !== undefined) return c;
      const h = redex.rawRedexHandle(value);
      return h === undefined ? rawHandle(value) : h;
    },
    cortexConfigJson: (options) => {
      const json = cortex.modelConfigJson(options);
      return json === null ? null : json.toString('utf8');
    },
    meshConfigJson: (options) => {
      const json = mesh.meshConfigJson(options);
      return json === null ? null : json.toString('utf8');
    },
    redexConfigJson: (options) => {
      const json = redex.configJson(options);
      return json === null ? null : json.toString('utf8');
    },
    poolEvents: pool.events,
    poolSize: () => pool.getPool().size,
    callEvents: asyncCalls.events,
    waits: asyncCalls.stats,
    waitBudget: asyncCalls.waitBudget,
    setWaitBudget: asyncCalls.setWaitBudget,
    leaks: finalize.leaks,
    /** Frees `handle` with C function `name` as close() does: throws BusyError (or the status's error). */
    free: (name, handle) => require('./lib/calls').free(name, handle),
    /** free() on the worker pool, as closeAsync() does. */
    freeAsync: (name, handle) => pool.getPool().run('free', [name, handle]),
    logPullerRunning: log.pullerRunning,
    logPullerStopped: log.pullerStopped,
    logPullerPulling: log.pullerPulling,
  },
};
