"""The behavior plane from Python: rules, safety permits as context
managers, load-balancer selections that always release, typed errors, and
close racing calls in flight."""

from __future__ import annotations

import threading

import pytest

import netmesh
from netmesh import LoadBalancer, Rules, Safety

RULES = {
    "name": "edge",
    "rules": [
        {
            "id": "big",
            "priority": "high",
            "condition": {"single": {"field": "size", "op": "Gt", "value": 1000}},
            "action": {"reject": {"reason": "too large"}},
            "rate_limit": {"max_executions": 1, "window_ms": 3_600_000},
        },
        {
            "id": "pro",
            "tags": ["tier"],
            "condition": {"single": {"field": "user.tier", "op": "Eq", "value": "pro"}},
            "action": {"log": {"level": "info", "message": "pro"}},
        },
    ],
}


def test_rules_evaluate_stats_round_trip_and_errors() -> None:
    with Rules(RULES) as rules:
        result = rules.evaluate({"size": 5000.0, "user": {"tier": "pro"}})
        assert result["visited"] == 2
        assert [o["rule_id"] for o in result["outcomes"]] == ["big", "pro"]
        assert rules.actions({"size": 2000}) == []  # rate limited now
        assert rules.evaluate({"size": 2000})["outcomes"][0]["suppressed"] == "rate_limited"
        assert rules.evaluate({"user": {"tier": "pro"}}, tag="tier")["visited"] == 1
        stats = rules.stats("big")
        assert (stats["matches"], stats["executions"]) == (3, 1)
        with Rules(rules.to_dict()) as again:
            assert [r["id"] for r in again.to_dict()["rules"]] == ["big", "pro"]
        rules.remove("pro")
        with pytest.raises(netmesh.RulesUnknownRuleError):
            rules.stats("pro")
        with pytest.raises(netmesh.RulesInvalidError, match="context"):
            rules.evaluate("{broken")
        rules.load({"name": "more", "rules": [RULES["rules"][1]]})
        with pytest.raises(netmesh.RulesInvalidError, match="duplicate"):
            rules.load({"name": "more", "rules": [RULES["rules"][1]]})
    with pytest.raises(netmesh.RulesInvalidError, match="rulez"):
        Rules({"name": "x", "rulez": []})
    with pytest.raises(netmesh.ShuttingDownError):
        rules.evaluate({})


def test_safety_permits_release_on_exit_and_errors_are_typed() -> None:
    config = {
        "limits": {"max_concurrent": 1},
        "policies": [{"name": "no-secrets", "rule": {"block": "(?i)password"}},
                     {"name": "mail", "rule": {"redact": "[a-z]+@[a-z]+"}}],
    }
    with Safety(config) as safety:
        with safety.acquire("a", content="to bob@example", tokens=10) as permit:
            assert permit.redacted == "to [REDACTED]"
            permit.consume(tokens=4)
            with pytest.raises(netmesh.SafetyLimitError, match="concurrent"):
                safety.acquire("b")
            assert safety.usage()["concurrent"] == 1
        usage = safety.usage()
        assert usage["concurrent"] == 0 and usage["tokens_last_minute"] == 4
        with pytest.raises(netmesh.SafetyContentError, match="no-secrets"):
            safety.acquire("a", content="my password")
        safety.kill("maintenance")
        with pytest.raises(netmesh.SafetyKillSwitchError, match="maintenance"):
            safety.check("a")
        safety.reset_kill_switch()
        safety.set_limits({"per_source_rpm": 1})
        assert safety.limits["per_source_rpm"] == 1
        safety.acquire("fresh").release()
        with pytest.raises(netmesh.SafetyRateLimitedError):
            safety.acquire("fresh")
        with pytest.raises(netmesh.SafetyConfigError, match="per_source_rmp"):
            safety.set_limits({"per_source_rmp": 1})
        kinds = [e["kind"] for e in safety.audit(clear=True)]
        assert kinds.count("blocked") >= 4
        assert safety.audit() == []


def test_safety_warn_policies_admit_with_warnings() -> None:
    """A Warn policy admits the request and says why on the permit."""
    config = {"policies": [{"name": "small", "rule": {"max_size": 4}, "action": "warn"}]}
    with Safety(config) as safety:
        with safety.acquire("a", content="longer than four") as permit:
            assert any("small" in w for w in permit.warnings), permit.info()
        with safety.acquire("a", content="ok") as permit:
            assert permit.warnings == []


def test_safety_exact_cap_under_racing_threads() -> None:
    with Safety({"limits": {"max_concurrent": 5}}) as safety:
        start = threading.Barrier(40)
        permits: list = []
        refused: list = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            start.wait()
            try:
                p = safety.acquire(f"s{i}")
            except netmesh.SafetyLimitError:
                with lock:
                    refused.append(i)
                return
            with lock:
                permits.append(p)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(permits) == 5 and len(refused) == 35
        for p in permits:
            p.close()
        assert safety.usage()["concurrent"] == 0


def test_load_balancer_selections_release() -> None:
    with LoadBalancer({"strategy": "power_of_two", "seed": 1, "max_connections": 1}) as lb:
        with pytest.raises(netmesh.LbNoEndpointError):
            lb.select()
        lb.add(bytes([1]) * 32)
        lb.add(bytes([2]) * 32, tags=["gpu"])
        with pytest.raises(netmesh.LbDuplicateEndpointError):
            lb.add(bytes([2]) * 32)
        with pytest.raises(netmesh.LbConfigError, match="sideways"):
            lb.add(bytes([3]) * 32, health="sideways")
        with lb.select(required_tags=["gpu"]) as sel:
            assert sel.id == bytes([2]) * 32 and not sel.is_probe
            assert [e["connections"] for e in lb.endpoints()] == [0, 1]
        assert [e["connections"] for e in lb.endpoints()] == [0, 0]
        a, b = lb.select(), lb.select()
        with pytest.raises(netmesh.LbNoEndpointError):
            lb.select()
        a.complete(ok=True)
        b.complete(ok=False)
        assert a.closed and b.closed
        assert [e["connections"] for e in lb.endpoints()] == [0, 0]
        lb.remove(bytes([2]) * 32)
        with pytest.raises(netmesh.LbUnknownEndpointError):
            lb.remove(bytes([2]) * 32)


def test_close_races_calls_in_flight() -> None:
    big = {"items": list(range(200_000))}
    for _ in range(5):
        rules = Rules(RULES)
        results: list = []

        def evaluate() -> None:
            try:
                for _ in range(20):
                    rules.evaluate(big)
                results.append("ok")
            except netmesh.ShuttingDownError as e:
                results.append(type(e).__name__)

        threads = [threading.Thread(target=evaluate) for _ in range(3)]
        for t in threads:
            t.start()
        rules.close()
        rules.close()
        for t in threads:
            t.join()
        assert len(results) == 3 and all(r in ("ok", "ShuttingDownError") for r in results), results
