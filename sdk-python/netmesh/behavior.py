"""The behavior plane: a rules engine, a safety envelope and a load balancer.

Configuration, contexts and results are JSON-shaped ``dict`` / ``list``
values (see ``docs/sdk-python.md`` for the forms)::

    with Rules({"name": "edge", "rules": [...]}) as rules:
        for outcome in rules.evaluate({"size": 5000})["outcomes"]:
            ...

    with Safety({"limits": {"max_concurrent": 10}}) as safety:
        with safety.acquire("tenant-a", tokens=100) as permit:
            ...                         # the claims are released on exit
            permit.consume(tokens=40)

    with LoadBalancer({"strategy": "power_of_two"}) as lb:
        lb.add(node_id)
        with lb.select() as sel:        # the connection slot is released on exit
            call(sel.id)
            sel.complete(ok=True)
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

from ._ffi import BytesLike, buf, call_bytes, check, ffi, lib, new_bytes, take_bytes
from ._handle import _Handle

__all__ = [
    "Rules",
    "Safety",
    "Permit",
    "LoadBalancer",
    "Selection",
    "NET_BEHAVIOR_MAX_CONTEXT_BYTES",
    "NET_LB_ENDPOINT_ID_LEN",
]

#: Largest context JSON Rules.evaluate and LoadBalancer.select accept.
NET_BEHAVIOR_MAX_CONTEXT_BYTES: int = lib.NET_BEHAVIOR_MAX_CONTEXT_BYTES
#: Length of a load-balancer endpoint id.
NET_LB_ENDPOINT_ID_LEN: int = lib.NET_LB_ENDPOINT_ID_LEN

Json = Any


def _encode(value: Any, name: str) -> bytes:
    """``None`` → empty (the defaults); a str or bytes passes through as JSON
    text; anything else is serialized."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return json.dumps(value).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} is not JSON-serializable: {e}") from None


def _text(value: str, name: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    return value.encode("utf-8")


def _json_call(fn: Any, *args: Any) -> Json:
    return json.loads(call_bytes(fn, *args))


class Rules(_Handle):
    """A rules engine (``net_rules_t``): rules evaluated against JSON
    contexts, in priority order, with cooldowns and rate limits. The
    engine returns the actions; it never runs them. Thread-safe."""

    __slots__ = ()
    _kind = "Rules"
    _free = staticmethod(lib.net_rules_free)

    def __init__(self, ruleset: Optional[Json] = None) -> None:
        """An engine holding the rules of ``ruleset`` (a dict in the rule-set
        form, or its JSON text; None: empty). Raises RulesInvalidError naming
        the bad key, operand, regex or duplicate id."""
        data = _encode(ruleset, "ruleset")
        ptr, n = buf(data, "ruleset")
        out = ffi.new("net_rules_t **")
        check(lib.net_rules_new(ptr, n, out))
        super().__init__(out[0])

    def load(self, ruleset: Json) -> None:
        """Adds the rules of a rule set, all or none."""
        ptr, n = buf(_encode(ruleset, "ruleset"), "ruleset")
        check(lib.net_rules_load(self._handle(), ptr, n))

    def remove(self, rule_id: str) -> None:
        """Removes a rule; RulesUnknownRuleError if none has this id."""
        ptr, n = buf(_text(rule_id, "rule_id"), "rule_id")
        check(lib.net_rules_remove(self._handle(), ptr, n))

    def evaluate(self, context: Json, tag: Optional[str] = None) -> Dict[str, Any]:
        """Evaluates the rules (with ``tag``: only those carrying it) against
        ``context``. Returns ``{"visited": n, "outcomes": [{"rule_id",
        "name", "action", "suppressed", "stop_processing"}]}``."""
        ptr, n = buf(_encode(context, "context"), "context")
        tag_bytes = None if tag is None else _text(tag, "tag")
        tptr, tn = (ffi.NULL, 0) if tag_bytes is None else buf(tag_bytes, "tag")
        result: Dict[str, Any] = _json_call(lib.net_rules_evaluate, self._handle(), ptr, n, tptr, tn)
        return result

    def actions(self, context: Json, tag: Optional[str] = None) -> List[Dict[str, Any]]:
        """The released actions of :meth:`evaluate`, in order."""
        return [o["action"] for o in self.evaluate(context, tag)["outcomes"] if o["action"] is not None]

    def stats(self, rule_id: str) -> Dict[str, Any]:
        """A rule's counters (evaluations, matches, executions, ...)."""
        ptr, n = buf(_text(rule_id, "rule_id"), "rule_id")
        result: Dict[str, Any] = _json_call(lib.net_rules_stats, self._handle(), ptr, n)
        return result

    def to_dict(self) -> Dict[str, Any]:
        """The rules as a rule set (loads back with ``Rules(...)``)."""
        result: Dict[str, Any] = _json_call(lib.net_rules_to_json, self._handle())
        return result


class Permit(_Handle):
    """An admitted request's claims (``net_safety_permit_t``): a concurrency
    slot, memory, reserved tokens and cost, all released by :meth:`close`
    or at the end of a ``with`` block."""

    __slots__ = ()
    _kind = "Permit"
    _free = staticmethod(lib.net_safety_permit_free)

    def info(self) -> Dict[str, Any]:
        """``{"warnings", "redacted", "deadline_ms", "unaccounted"}``."""
        result: Dict[str, Any] = _json_call(lib.net_safety_permit_info, self._handle())
        return result

    @property
    def redacted(self) -> Optional[str]:
        """The content with redactions applied, if a Redact policy matched."""
        value: Optional[str] = self.info()["redacted"]
        return value

    @property
    def warnings(self) -> List[str]:
        """Violations admitted anyway (AuditOnly mode, Warn/Log policies)."""
        value: List[str] = self.info()["warnings"]
        return value

    def consume(self, tokens: int = 0, cost_cents: int = 0) -> None:
        """Marks tokens and cost as really used (they stay charged when the
        permit is released; the rest of the reservation is given back)."""
        check(lib.net_safety_permit_consume(self._handle(), tokens, cost_cents))

    def release(self) -> None:
        """Releases the claims (the same as :meth:`close`)."""
        self.close()


def _request(source: str, content: Optional[str], tokens: int, memory_mb: int, cost_cents: int) -> bytes:
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    request: Dict[str, Any] = {"source": source, "tokens": tokens, "memory_mb": memory_mb, "cost_cents": cost_cents}
    if content is not None:
        request["content"] = content
    return json.dumps(request).encode("utf-8")


class Safety(_Handle):
    """A safety envelope (``net_safety_t``): kill switch, concurrency /
    memory / cost caps, global and per-source rate limits, content policies
    and an audit ring. Caps are exact under any number of racing threads.
    Thread-safe; permits outlive the envelope."""

    __slots__ = ()
    _kind = "Safety"
    _free = staticmethod(lib.net_safety_free)

    def __init__(self, config: Optional[Json] = None) -> None:
        """An envelope from ``{"mode", "limits", "policies", "audit"}``
        (every key optional; None: the defaults). Raises SafetyConfigError
        naming the bad key or pattern."""
        ptr, n = buf(_encode(config, "config"), "config")
        out = ffi.new("net_safety_t **")
        check(lib.net_safety_new(ptr, n, out))
        super().__init__(out[0])

    def acquire(
        self,
        source: str,
        content: Optional[str] = None,
        tokens: int = 0,
        memory_mb: int = 0,
        cost_cents: int = 0,
    ) -> Permit:
        """Admits a request and returns the :class:`Permit` holding its
        claims. Raises SafetyKillSwitchError, SafetyLimitError,
        SafetyRateLimitedError or SafetyContentError."""
        ptr, n = buf(_request(source, content, tokens, memory_mb, cost_cents), "request")
        out = ffi.new("net_safety_permit_t **")
        check(lib.net_safety_acquire(self._handle(), ptr, n, out))
        return Permit(out[0])

    def check(
        self,
        source: str,
        content: Optional[str] = None,
        tokens: int = 0,
        memory_mb: int = 0,
        cost_cents: int = 0,
    ) -> Dict[str, Any]:
        """Whether the request would be admitted now, claiming nothing:
        ``{"warnings", "redacted"}``, or the error acquire would raise."""
        ptr, n = buf(_request(source, content, tokens, memory_mb, cost_cents), "request")
        result: Dict[str, Any] = _json_call(lib.net_safety_check, self._handle(), ptr, n)
        return result

    @property
    def limits(self) -> Dict[str, Any]:
        """The current limits."""
        result: Dict[str, Any] = _json_call(lib.net_safety_limits, self._handle())
        return result

    def set_limits(self, limits: Json) -> None:
        """Replaces the limits (missing keys take the defaults)."""
        ptr, n = buf(_encode(limits, "limits"), "limits")
        check(lib.net_safety_set_limits(self._handle(), ptr, n))

    def kill(self, reason: str, auto_reset_ms: int = 0) -> None:
        """Engages the kill switch (lifting itself after ``auto_reset_ms``
        when not 0)."""
        ptr, n = buf(_text(reason, "reason"), "reason")
        check(lib.net_safety_kill(self._handle(), ptr, n, auto_reset_ms))

    def reset_kill_switch(self) -> None:
        """Lifts the kill switch."""
        check(lib.net_safety_reset_kill_switch(self._handle()))

    def usage(self) -> Dict[str, Any]:
        """Current usage, with ``kill_switch`` and ``mode``."""
        result: Dict[str, Any] = _json_call(lib.net_safety_usage, self._handle())
        return result

    def audit(self, clear: bool = False) -> List[Dict[str, Any]]:
        """The audit ring, oldest first (emptied when ``clear``)."""
        result: List[Dict[str, Any]] = _json_call(lib.net_safety_audit, self._handle(), bool(clear))
        return result


class Selection(_Handle):
    """A selected endpoint with a reserved connection slot
    (``net_lb_selection_t``), released by :meth:`complete`, :meth:`close`
    or the end of a ``with`` block."""

    __slots__ = ()
    _kind = "Selection"
    _free = staticmethod(lib.net_lb_selection_free)

    @property
    def id(self) -> bytes:
        """The endpoint's 32-byte id."""
        out = new_bytes()
        probe = ffi.new("bool *")
        check(lib.net_lb_selection_id(self._handle(), out, probe))
        return take_bytes(out)

    @property
    def is_probe(self) -> bool:
        """Whether this is the half-open circuit's single probe."""
        out = new_bytes()
        probe = ffi.new("bool *")
        check(lib.net_lb_selection_id(self._handle(), out, probe))
        take_bytes(out)
        return bool(probe[0])

    def complete(self, ok: bool = True) -> None:
        """Reports the outcome (feeds the circuit breaker) and releases the
        slot, then closes the selection."""
        try:
            check(lib.net_lb_selection_complete(self._handle(), bool(ok)))
        finally:
            self.close()


class LoadBalancer(_Handle):
    """A load balancer over 32-byte endpoint ids (``net_lb_t``): eleven
    strategies (power-of-two-choices, consistent hash, least connections,
    ...), health, zones, tags and circuit breakers. Thread-safe."""

    __slots__ = ()
    _kind = "LoadBalancer"
    _free = staticmethod(lib.net_lb_free)

    def __init__(self, config: Optional[Json] = None) -> None:
        """A balancer from ``{"strategy", "max_connections", ...}`` (every
        key optional; None: round robin). Raises LbConfigError."""
        ptr, n = buf(_encode(config, "config"), "config")
        out = ffi.new("net_lb_t **")
        check(lib.net_lb_new(ptr, n, out))
        super().__init__(out[0])

    def add(
        self,
        endpoint_id: BytesLike,
        weight: int = 100,
        health: str = "healthy",
        tags: Sequence[str] = (),
        zone: Optional[str] = None,
        enabled: bool = True,
    ) -> None:
        """Adds an endpoint; LbDuplicateEndpointError if present."""
        iptr, ilen = buf(endpoint_id, "endpoint_id")
        options = {"weight": weight, "health": health, "tags": list(tags), "zone": zone, "enabled": enabled}
        optr, olen = buf(json.dumps(options).encode("utf-8"), "options")
        check(lib.net_lb_add(self._handle(), iptr, ilen, optr, olen))

    def remove(self, endpoint_id: BytesLike) -> None:
        """Removes an endpoint; LbUnknownEndpointError if absent."""
        iptr, ilen = buf(endpoint_id, "endpoint_id")
        check(lib.net_lb_remove(self._handle(), iptr, ilen))

    def select(
        self,
        routing_key: Optional[str] = None,
        required_tags: Sequence[str] = (),
        zone: Optional[str] = None,
    ) -> Selection:
        """Picks an endpoint and reserves a connection on it. Raises
        LbNoEndpointError when none can take the request."""
        request = {"routing_key": routing_key, "required_tags": list(required_tags), "zone": zone}
        ptr, n = buf(json.dumps(request).encode("utf-8"), "request")
        out = ffi.new("net_lb_selection_t **")
        check(lib.net_lb_select(self._handle(), ptr, n, out))
        return Selection(out[0])

    def endpoints(self) -> List[Dict[str, Any]]:
        """Every endpoint with its connections and circuit state."""
        result: List[Dict[str, Any]] = _json_call(lib.net_lb_endpoints, self._handle())
        return result
