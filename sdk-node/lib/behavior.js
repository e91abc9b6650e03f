'use strict';
// The behavior plane: Rules (net_rules_*), Safety and its Permits
// (net_safety_*), LoadBalancer and its Selections (net_lb_*). Configuration,
// contexts and results are JSON; results are parsed with every integer as a
// bigint (counters and timestamps are u64). Permits and Selections hold a
// claim (a concurrency slot, a connection slot) until released: use
// `using`, close(), or release() / complete().
//
// Lifetime as everywhere: close() nulls the field and frees; libnet's
// HandleGuard makes the free wait for calls in flight and refuses later ones.

const util = require('node:util');
const { fns, takeBytes, STATUS } = require('./native');
const calls = require('./calls');
const args = require('./args');
const pool = require('./pool');
const { leakRegistry } = require('./finalize');
const { ShuttingDownError } = require('./errors');
const { parseJsonBigInt } = require('./json');

const kConstruct = Symbol('netmesh.behavior.construct');

/** JSON text of `value` (a string passes through; null/undefined: empty = defaults). */
function jsonArg(value, name) {
  if (value == null) return new Uint8Array(0);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  let text;
  try {
    text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? Number(v) : v));
  } catch (e) {
    throw new TypeError(`${name} is not JSON-serializable: ${e.message}`);
  }
  return Buffer.from(text, 'utf8');
}

function text(value, name) {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  return Buffer.from(value, 'utf8');
}

function jsonOut(fn, ...argv) {
  const out = {};
  calls.check(fn(...argv, out));
  return parseJsonBigInt(takeBytes(out).toString('utf8'));
}

function handleOut(fn, ...argv) {
  const out = [null];
  calls.check(fn(...argv, out));
  return out[0];
}

/** What the five handle classes share: the handle field, close, dispose. */
class BehaviorHandle {
  #handle;
  #freeName;
  #finalizer;

  constructor(handle, freeName, finalizer) {
    this.#handle = handle;
    this.#freeName = freeName;
    this.#finalizer = finalizer;
    finalizer.register(this, handle, this);
  }

  /** @internal The live handle; throws ShuttingDownError once closed. */
  _live() {
    const handle = this.#handle;
    if (handle === null) {
      throw new ShuttingDownError(`${this.constructor.name} is closed`, STATUS.NET_ERR_SHUTTING_DOWN);
    }
    return handle;
  }

  #detach() {
    const handle = this.#handle;
    if (handle === null) return null;
    this.#handle = null;
    this.#finalizer.unregister(this);
    return handle;
  }

  /** True once close() has been called. */
  get closed() {
    return this.#handle === null;
  }

  /**
   * Releases the handle (and what it holds). Idempotent; waits (up to 5 s,
   * inside libnet) for calls in flight; later calls throw ShuttingDownError.
   */
  close() {
    const handle = this.#detach();
    if (handle !== null) calls.free(this.#freeName, handle);
  }

  /** close() on the worker pool. */
  closeAsync() {
    const handle = this.#detach();
    if (handle === null) return Promise.resolve();
    return pool
      .getPool()
      .run('free', [this.#freeName, handle])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    return `${this.constructor.name} <${this.closed ? 'closed' : 'open'}>`;
  }
}

const rulesFinalizer = leakRegistry('Rules', 'net_rules_free');
const safetyFinalizer = leakRegistry('Safety', 'net_safety_free');
const permitFinalizer = leakRegistry('Permit', 'net_safety_permit_free');
const lbFinalizer = leakRegistry('LoadBalancer', 'net_lb_free');
const selectionFinalizer = leakRegistry('Selection', 'net_lb_selection_free');

/** A rules engine: rules evaluated against JSON contexts; actions are returned, never run. */
class Rules extends BehaviorHandle {
  /** An engine holding the rules of `ruleSet` (object or JSON text; omitted: empty). */
  constructor(ruleSet) {
    const data = jsonArg(ruleSet, 'ruleSet');
    super(handleOut(fns.net_rules_new, data, data.byteLength), 'net_rules_free', rulesFinalizer);
  }

  /** Adds the rules of a rule set, all or none. */
  load(ruleSet) {
    const data = jsonArg(ruleSet, 'ruleSet');
    calls.check(fns.net_rules_load(this._live(), data, data.byteLength));
  }

  /** Removes a rule (RulesUnknownRuleError if absent). */
  remove(ruleId) {
    const id = text(ruleId, 'ruleId');
    calls.check(fns.net_rules_remove(this._live(), id, id.byteLength));
  }

  /** `{ visited, outcomes: [{ rule_id, name, action, suppressed, stop_processing }] }`. */
  evaluate(context, tag) {
    const data = jsonArg(context, 'context');
    const t = tag == null ? null : text(tag, 'tag');
    return jsonOut(fns.net_rules_evaluate, this._live(), data, data.byteLength, t, t ? t.byteLength : 0);
  }

  /** A rule's counters (bigints). */
  stats(ruleId) {
    const id = text(ruleId, 'ruleId');
    return jsonOut(fns.net_rules_stats, this._live(), id, id.byteLength);
  }

  /** The rules as a rule set object (new Rules(...) loads it back). */
  toJSON() {
    return jsonOut(fns.net_rules_to_json, this._live());
  }
}

/** An admitted request's claims, released by release() / close() / `using`. */
class Permit extends BehaviorHandle {
  /** @private Obtained from Safety.acquire. */
  constructor(token, handle) {
    if (token !== kConstruct) throw new TypeError('Permit has no public constructor: use Safety.acquire()');
    super(handle, 'net_safety_permit_free', permitFinalizer);
  }

  /** `{ warnings, redacted, deadline_ms, unaccounted }`. */
  info() {
    return jsonOut(fns.net_safety_permit_info, this._live());
  }

  /** Marks tokens and cost as really used (kept charged after release). */
  consume(tokens = 0, costCents = 0) {
    calls.check(
      fns.net_safety_permit_consume(this._live(), args.u64(tokens, 'tokens'), args.u64(costCents, 'costCents')),
    );
  }

  /** Releases the claims (the same as close()). */
  release() {
    this.close();
  }
}

function requestJson(source, options) {
  if (typeof source !== 'string') throw new TypeError('source must be a string');
  const o = options ?? {};
  return jsonArg(
    {
      source,
      content: o.content ?? null,
      tokens: o.tokens ?? 0,
      memory_mb: o.memoryMb ?? 0,
      cost_cents: o.costCents ?? 0,
    },
    'request',
  );
}

/** A safety envelope: kill switch, exact caps, rate limits, content policies, audit. */
class Safety extends BehaviorHandle {
  /** An envelope from `{ mode, limits, policies, audit }` (omitted: the defaults). */
  constructor(config) {
    const data = jsonArg(config, 'config');
    super(handleOut(fns.net_safety_new, data, data.byteLength), 'net_safety_free', safetyFinalizer);
  }

  /** Admits a request and returns its Permit; throws SafetyLimitError & co. */
  acquire(source, options) {
    const data = requestJson(source, options);
    return new Permit(kConstruct, handleOut(fns.net_safety_acquire, this._live(), data, data.byteLength));
  }

  /** Whether the request would be admitted now: `{ warnings, redacted }`, or throws. */
  check(source, options) {
    const data = requestJson(source, options);
    return jsonOut(fns.net_safety_check, this._live(), data, data.byteLength);
  }

  /** The current limits. */
  get limits() {
    return jsonOut(fns.net_safety_limits, this._live());
  }

  /** Replaces the limits (missing keys take the defaults). */
  setLimits(limits) {
    const data = jsonArg(limits, 'limits');
    calls.check(fns.net_safety_set_limits(this._live(), data, data.byteLength));
  }

  /** Engages the kill switch (lifting itself after autoResetMs when not 0). */
  kill(reason, autoResetMs = 0) {
    const r = text(reason, 'reason');
    calls.check(fns.net_safety_kill(this._live(), r, r.byteLength, args.u64(autoResetMs, 'autoResetMs')));
  }

  /** Lifts the kill switch. */
  resetKillSwitch() {
    calls.check(fns.net_safety_reset_kill_switch(this._live()));
  }

  /** Current usage, with kill_switch and mode. */
  usage() {
    return jsonOut(fns.net_safety_usage, this._live());
  }

  /** The audit ring, oldest first (emptied when `clear`). */
  audit(clear = false) {
    return jsonOut(fns.net_safety_audit, this._live(), Boolean(clear));
  }
}

/** A selected endpoint with a reserved connection slot. */
class Selection extends BehaviorHandle {
  /** @private Obtained from LoadBalancer.select. */
  constructor(token, handle) {
    if (token !== kConstruct) throw new TypeError('Selection has no public constructor: use LoadBalancer.select()');
    super(handle, 'net_lb_selection_free', selectionFinalizer);
  }

  /** The endpoint's 32-byte id. */
  get id() {
    const out = {};
    calls.check(fns.net_lb_selection_id(this._live(), out, [false]));
    return takeBytes(out);
  }

  /** Whether this is the half-open circuit's single probe. */
  get isProbe() {
    const out = {};
    const probe = [false];
    calls.check(fns.net_lb_selection_id(this._live(), out, probe));
    takeBytes(out);
    return Boolean(probe[0]);
  }

  /** Reports the outcome, releases the slot, and closes the selection. */
  complete(ok = true) {
    try {
      calls.check(fns.net_lb_selection_complete(this._live(), Boolean(ok)));
    } finally {
      this.close();
    }
  }
}

/** A load balancer over 32-byte endpoint ids (power-of-two-choices, consistent hash, ...). */
class LoadBalancer extends BehaviorHandle {
  /** A balancer from `{ strategy, max_connections, ... }` (omitted: round robin). */
  constructor(config) {
    const data = jsonArg(config, 'config');
    super(handleOut(fns.net_lb_new, data, data.byteLength), 'net_lb_free', lbFinalizer);
  }

  /** Adds an endpoint: options `{ weight, health, tags, zone, enabled }`. */
  add(endpointId, options) {
    const id = args.bytes(endpointId, 'endpointId');
    const data = jsonArg(options ?? {}, 'options');
    calls.check(fns.net_lb_add(this._live(), id, id.byteLength, data, data.byteLength));
  }

  /** Removes an endpoint (LbUnknownEndpointError if absent). */
  remove(endpointId) {
    const id = args.bytes(endpointId, 'endpointId');
    calls.check(fns.net_lb_remove(this._live(), id, id.byteLength));
  }

  /** Picks an endpoint: request `{ routing_key, required_tags, zone }`; throws LbNoEndpointError. */
  select(request) {
    const data = jsonArg(request ?? {}, 'request');
    return new Selection(kConstruct, handleOut(fns.net_lb_select, this._live(), data, data.byteLength));
  }

  /** Every endpoint with its connections and circuit state. */
  endpoints() {
    return jsonOut(fns.net_lb_endpoints, this._live());
  }
}

module.exports = { Rules, Safety, Permit, LoadBalancer, Selection };
