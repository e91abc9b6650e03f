#!/usr/bin/env python3
"""Self-test of scripts/check-sdk-parity.py: on a made-up table and made-up
introspection and coverage results, every kind of gap is reported, in words
that name the C function, the SDK, the wrapper and what is wrong with it;
and a complete, tested API passes. Runs in a second (no SDK is touched)."""
from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("parity", HERE.parent / "check-sdk-parity.py")
parity = importlib.util.module_from_spec(spec)
assert spec.loader is not None
spec.loader.exec_module(parity)

failures = []


def expect(problems, *fragments):
    for p in problems:
        if all(f in p for f in fragments):
            return
    failures.append(f"no problem mentions {fragments!r}; got:\n    " + "\n    ".join(problems))


def table_of(functions):
    return {"functions": functions}


def check(table, apis, coverage=True, sites=None):
    problems, notes = [], []
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "table.json"
        path.write_text(json.dumps(table_of(table)))
        old = parity.TABLE
        parity.TABLE = path
        try:
            parity.ROOT = pathlib.Path(d)  # for relative names in messages
            loaded = parity.load_table(["net_a", "net_b", "net_c"], problems)
        finally:
            parity.TABLE = old
    for sdk, entries in apis.items():
        parity.check_sdk(sdk, loaded, parity.Api(sdk, entries, (sites or {}).get(sdk)), coverage,
                         problems, notes)
    return problems


GOOD_TABLE = {
    "net_a": {"go": ["Thing.Do/1"], "python": ["Thing.do/1"], "node": ["Thing.do/1", "Thing.doAsync/1"]},
    "net_b": {"go": ["Thing.Size/0"], "python": ["Thing.size/prop"], "node": ["Thing.size/get"]},
    "net_c": {"go": {"internal": "freed by Close"}, "python": {"internal": "freed by close"},
              "node": {"internal": "freed by close"}},
}


def go(name, arity, ran=1, blocks=1):
    return {"name": name, "arity": arity, "file": "thing.go", "start_line": 10, "end_line": 20,
            "measured": blocks > 0, "executed": (ran, blocks)}


def py(name, arity, lines=3):
    return {"name": name, "arity": arity, "file": "thing.py", "first": 5, "last": 9, "lines_run": lines}


def node(name, arity, calls=2):
    return {"name": name, "arity": arity, "file": "lib/thing.js", "line": 4, "column": 6, "calls": calls}


GOOD_APIS = {
    "go": [go("Thing.Do", 1), go("Thing.Size", 0)],
    "python": [py("Thing.do", 1), py("Thing.size", "prop")],
    "node": [node("Thing.do", 1), node("Thing.doAsync", 1), node("Thing.size", "get")],
}

# A complete, tested API passes.
ok = check(GOOD_TABLE, GOOD_APIS)
if ok:
    failures.append("a complete and tested API was refused:\n    " + "\n    ".join(ok))

# The table: a header function without entry, a stale entry, a bad internal entry, a bad wrapper.
bad_table = {k: v for k, v in GOOD_TABLE.items() if k != "net_b"}
bad_table["net_gone"] = GOOD_TABLE["net_a"]
bad_table["net_c"] = dict(GOOD_TABLE["net_c"], node={"internal": " "})
bad_table["net_a"] = dict(GOOD_TABLE["net_a"], python=["Thing.do"])
p = check(bad_table, {})
expect(p, "table:", "net_b", "has no entry")
expect(p, "table:", "net_gone", "does not declare")
expect(p, "table:", "net_c", "node", "internal")
expect(p, "table:", "net_a", "python", "'Thing.do'", "Name/arity")

# A wrapper missing from the public API; an arity that changed.
apis = json.loads(json.dumps(GOOD_APIS))
apis["python"] = [py("Thing.do", 1)]
apis["node"][0]["arity"] = 2
p = check(GOOD_TABLE, apis)
expect(p, "python:", "net_b", "no public wrapper", "Thing.size", "not in the python SDK's public API")
expect(p, "node:", "net_a", "Thing.do has arity 2", "the table says 1")

# Wrappers the suites never execute, in each language's terms.
apis = json.loads(json.dumps(GOOD_APIS))
apis["go"][0] = go("Thing.Do", 1, ran=0, blocks=4)
apis["python"][1] = py("Thing.size", "prop", lines=0)
apis["node"][1] = node("Thing.doAsync", 1, calls=0)
p = check(GOOD_TABLE, apis)
expect(p, "go:", "net_a", "Thing.Do (thing.go:10)", "never executed", "0 of 4 blocks ran")
expect(p, "python:", "net_b", "Thing.size (netmesh/thing.py:5)", "never executed")
expect(p, "node:", "net_a", "Thing.doAsync (lib/thing.js:5)", "never executed")
# The SDK's own calls of a C function: an internal one must be reached, and
# a wrapped one too when its wrappers ran on other paths.
sites = {"go": {"net_c": [{"file": "handle.go", "line": 7, "ran": False}],
                "net_a": [{"file": "thing.go", "line": 12, "ran": False}]},
         "node": {"net_c": [{"file": "lib/handle.js", "line": 3, "ran": True}]}}
p = check(GOOD_TABLE, GOOD_APIS, sites=sites)
expect(p, "go:", "net_c is internal", "handle.go:7", "is executed by")
expect(p, "go:", "net_a", "its wrappers run", "thing.go:12")
if any(x.startswith("node:") for x in p):
    failures.append("a reached internal call was reported: " + "; ".join(p))

# ... which --no-coverage does not judge.
if check(GOOD_TABLE, apis, coverage=False):
    failures.append("--no-coverage still judged coverage")

if failures:
    print("test-check-sdk-parity: FAILED")
    for f in failures:
        print("  " + f)
    sys.exit(1)
print("test-check-sdk-parity: ok (table, missing, arity, untested and unreached cases)")
