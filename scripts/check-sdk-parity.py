#!/usr/bin/env python3
"""SDK parity (issue 12): every function of include/net.h has a public
wrapper in the Go, Python and Node SDKs, with the name and arity one table
says, and every such wrapper is executed by its SDK's own test suite.

    scripts/check-sdk-parity.py                 # all three SDKs (make test-parity)
    scripts/check-sdk-parity.py --sdk go,node   # some of them
    scripts/check-sdk-parity.py --no-coverage   # names and arities only (fast)

The table is scripts/sdk-parity.json: for each C function, the wrappers
("Name/arity") per language, or {"internal": "why"} when the SDK has no
public wrapper by design (net_bytes_free, the cancellation token in Go and
Node, ...). The check fails, saying exactly what is missing, when

  - a function of net.h has no entry in the table, or the table names a
    function net.h no longer has;
  - a wrapper named in the table is not in the SDK's public API, or has
    another arity. The public API comes from the language itself:
      Go      a go/ast walk of the package (scripts/parity/go_api.go):
              exported functions and methods of exported types, parameter
              counts;
      Python  `import netmesh` in the project venv and `inspect`
              (scripts/parity/py_api.py): public functions, classes and their
              methods/properties (inherited ones included), signatures;
      Node    `require()` of the package and its exported classes'
              prototypes (scripts/parity/node_api.js): functions with their
              `length`, methods, getters;
  - none of the SDK's own calls of a C function (C.net_x, lib.net_x,
    fns.net_x: found by scanning the SDK's sources) runs under its suite:
    for an {"internal"} function (the call layer, the log puller, the
    per-call cancellation token), or for a wrapped one whose wrappers all
    ran but on other paths (a batch wrapper choosing between two calls);
  - a wrapper is never executed by its SDK's test suite, measured with the
    language's coverage tooling while the suite runs:
      Go      `go test -coverprofile` (blocks of the wrapper's body with a
              count > 0);
      Python  coverage.py (`coverage run -m pytest`, against the installed
              wheel as `make -C sdk-python test` does; lines of the wrapper's
              body that ran);
      Node    V8's own coverage (NODE_V8_COVERAGE, while `make -C sdk-node
              test` runs node:test on the packed package; the wrapper's
              function entered at least once).

Coverage runs each suite once more, instrumented, unless data newer than
the SDK's sources and the staged libnet is already in target/parity (an SDK
test target may write it there: see --help for the paths and
scripts/parity/python.coveragerc). A suite that fails or times out still
yields the coverage of what ran; the report says so, and the check fails.
The report also goes to target/parity/report.txt, next to each SDK's
introspected API (<sdk>-api.json) and the suites' logs.

The helpers' own self-test: scripts/parity/test-check-sdk-parity.py.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER = ROOT / "include" / "net.h"
TABLE = ROOT / "scripts" / "sdk-parity.json"
HELPERS = ROOT / "scripts" / "parity"
SDKS = ("go", "python", "node")
SDK_DIRS = {"go": ROOT / "sdk-go", "python": ROOT / "sdk-python", "node": ROOT / "sdk-node"}


# ---- environment ------------------------------------------------------------------


def sdk_env() -> Dict[str, str]:
    """The environment the root Makefile gives every SDK suite (SDK_ENV),
    defaulted from the repository layout when the script runs by hand."""
    env = dict(os.environ)
    stage = pathlib.Path(env.get("NET_STAGE") or ROOT / "target" / "stage")
    env.setdefault("NET_STAGE", str(stage))
    env.setdefault("NET_ROOT", str(ROOT))
    env.setdefault("NET_VENV", str(ROOT / "target" / "venv"))
    env.setdefault("NET_LIBRARY_PATH", str(stage / "lib" / "libnet.so"))
    env["PKG_CONFIG_PATH"] = str(stage / "lib" / "pkgconfig") + (
        ":" + env["PKG_CONFIG_PATH"] if env.get("PKG_CONFIG_PATH") else "")
    env["LD_LIBRARY_PATH"] = str(stage / "lib") + (
        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def go_env(env: Dict[str, str]) -> Dict[str, str]:
    """sdk-go/Makefile's settings: the local toolchain, nothing downloaded."""
    env = dict(env)
    env.update(GOTOOLCHAIN="local", GOFLAGS="-mod=mod -buildvcs=false", GOPROXY="off",
               GOWORK="off", CGO_ENABLED="1")
    return env


def tail_of(text: str, lines: int = 12) -> str:
    """The last non-blank lines of a command's output, indented for the report."""
    kept = [line.strip() for line in (text or "").splitlines() if line.strip()][-lines:]
    return "\n".join("      " + line[:300] for line in kept)


def newest_mtime(paths: List[pathlib.Path]) -> float:
    newest = 0.0
    for p in paths:
        if p.is_file():
            newest = max(newest, p.stat().st_mtime)
        elif p.is_dir():
            for f in p.rglob("*"):
                if f.is_file() and "node_modules" not in f.parts and "__pycache__" not in f.parts:
                    newest = max(newest, f.stat().st_mtime)
    return newest


# ---- the header and the table -------------------------------------------------------


def header_functions() -> List[str]:
    code = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(), flags=re.S)
    code = re.sub(r"//[^\n]*", " ", code)
    names = list(dict.fromkeys(re.findall(r"\b(net_[a-z0-9_]+)\s*\(", code)))
    if len(names) < 50:
        sys.exit(f"check-sdk-parity: parsed only {len(names)} functions from {HEADER}")
    return names


WRAPPER = re.compile(r"^(new )?[A-Za-z_][\w.\[\]]*(=)?/(\d+|prop|get|set)$")


def load_table(functions: List[str], problems: List[str]) -> Dict[str, Dict[str, Any]]:
    table = json.loads(TABLE.read_text())["functions"]
    rel = TABLE.relative_to(ROOT) if TABLE.is_relative_to(ROOT) else TABLE
    for fn in functions:
        if fn not in table:
            problems.append(f"table: {fn} (in include/net.h) has no entry in {rel}: add its "
                            f"wrapper in each SDK, or {{\"internal\": \"why\"}}")
    for fn, entry in table.items():
        if fn not in functions:
            problems.append(f"table: {rel} has an entry for {fn}, which include/net.h does not "
                            f"declare: remove it or rename it")
            continue
        for sdk in SDKS:
            value = entry.get(sdk)
            if isinstance(value, dict):
                if not str(value.get("internal", "")).strip():
                    problems.append(f"table: {fn}: the {sdk} entry must be a list of wrappers or "
                                    f"{{\"internal\": \"<why there is no public wrapper>\"}}")
            elif not isinstance(value, list) or not value:
                problems.append(f"table: {fn} has no {sdk} entry")
            else:
                for w in value:
                    if not isinstance(w, str) or not WRAPPER.match(w):
                        problems.append(f"table: {fn}: {sdk} wrapper {w!r} is not \"Name/arity\"")
    # Only what net.h declares is checked against the SDKs.
    return {fn: entry for fn, entry in table.items() if fn in functions}


# ---- introspection ---------------------------------------------------------------------


class Api:
    """One SDK's public API: name -> entry (arity, and coverage once known)."""

    def __init__(self, sdk: str, entries: List[Dict[str, Any]],
                 call_sites: Optional[Dict[str, List[Dict[str, Any]]]] = None):
        self.sdk = sdk
        self.entries = {e["name"]: e for e in entries}
        # C function -> where the SDK's own code uses it ({file, line, ran?})
        self.call_sites = call_sites or {}

    def lookup(self, name: str) -> Optional[Dict[str, Any]]:
        return self.entries.get(name)


def run(cmd: List[str], cwd: pathlib.Path, env: Dict[str, str], timeout: float,
        log: Optional[pathlib.Path] = None) -> Tuple[int, str]:
    """Runs `cmd` in its own process group; output to `log` (or returned)."""
    out = open(log, "w") if log else subprocess.PIPE
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            text, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGTERM first: coverage.py (sigterm = true) and the suites' own
            # handlers save what they measured.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                text, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                text, _ = proc.communicate()
            return -999, text or ""
        return proc.returncode, text or ""
    finally:
        if log:
            out.close()


def introspect(sdk: str, env: Dict[str, str], coverage: Optional[pathlib.Path]) -> Api:
    if sdk == "go":
        rc, text = run(["go", "run", str(HELPERS / "go_api.go"), str(SDK_DIRS["go"] / "netmesh")],
                       ROOT, go_env(env), 300)
        if rc != 0:
            raise RuntimeError(f"go run scripts/parity/go_api.go failed:\n{tail_of(text)}")
        entries = [d for d in json.loads(text) if d["exported"]]
        return Api(sdk, entries, go_call_sites())
    if sdk == "python":
        python = pathlib.Path(env["NET_VENV"]) / "bin" / "python"
        cmd = [str(python), str(HELPERS / "py_api.py")] + ([str(coverage)] if coverage else [])
        penv = dict(env)
        if coverage:
            # The installed wheel (with its bundled libnet), which the suite ran.
            penv.pop("NET_LIBRARY_PATH", None)
        else:
            # The sources as they are (the installed wheel may be older).
            penv["PYTHONPATH"] = str(SDK_DIRS["python"]) + (
                ":" + penv["PYTHONPATH"] if penv.get("PYTHONPATH") else "")
        rc, text = run(cmd, ROOT, penv, 300)
        if rc != 0:
            raise RuntimeError(f"{python} scripts/parity/py_api.py failed:\n{tail_of(text)}")
        data = json.loads(text)
        return Api(sdk, data["api"], data["call_sites"])
    cmd = ["node", str(HELPERS / "node_api.js"), str(SDK_DIRS["node"])] + (
        [str(coverage)] if coverage else [])
    rc, text = run(cmd, ROOT, env, 300)
    if rc != 0:
        raise RuntimeError(f"node scripts/parity/node_api.js failed:\n{tail_of(text)}")
    data = json.loads(text)
    return Api(sdk, data["api"], data["call_sites"])


def go_call_sites() -> Dict[str, List[Dict[str, Any]]]:
    """Where sdk-go/netmesh (tests aside) calls each C function (C.net_*)."""
    sites: Dict[str, List[Dict[str, Any]]] = {}
    for path in sorted((SDK_DIRS["go"] / "netmesh").glob("*.go")):
        if path.name.endswith("_test.go"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            for name in re.findall(r"\bC\.(net_[a-z0-9_]+)\b", code):
                sites.setdefault(name, []).append({"file": path.name, "line": number})
    return sites


# ---- coverage -------------------------------------------------------------------------------


class Suite:
    """What running an SDK's suite under coverage gave."""

    def __init__(self, data: Optional[pathlib.Path], note: str, ok: bool):
        self.data = data
        self.note = note
        self.ok = ok


def coverage_paths(out: pathlib.Path) -> Dict[str, pathlib.Path]:
    return {"go": out / "go.cover", "python": out / "python.coverage", "node": out / "node-v8"}


def fresh(data: pathlib.Path, sdk: str, env: Dict[str, str]) -> bool:
    """Whether coverage data left by an earlier run (ours or the SDK's own
    test target) measured the current sources and libnet: every file of it
    is newer than all of them (V8 coverage from older sources would point
    into other code)."""
    files = sorted(data.glob("*.json")) if data.is_dir() else ([data] if data.is_file() else [])
    if not files:
        return False
    # Data our own run left from a suite that failed or timed out is partial:
    # run again. (Data an SDK's test target wrote has no status: that target
    # passed, or `make test` would have stopped there.)
    status = data.parent / f"{sdk}-suite.status"
    if status.is_file() and not json.loads(status.read_text()).get("ok"):
        return False
    sources = [SDK_DIRS[sdk], pathlib.Path(env["NET_STAGE"]) / "lib" / "libnet.so"]
    newest = newest_mtime(sources)
    return all(f.stat().st_mtime > newest for f in files)


def run_suite(sdk: str, env: Dict[str, str], out: pathlib.Path, timeout: float) -> Suite:
    data = coverage_paths(out)[sdk]
    log = out / f"{sdk}-suite.log"
    started = time.monotonic()
    if sdk == "go":
        data.unlink(missing_ok=True)
        cmd = ["go", "test", "-count=1", f"-timeout={int(timeout)}s", f"-coverprofile={data}",
               "./..."]
        rc, _ = run(cmd, SDK_DIRS["go"], go_env(env), timeout + 120, log)
    elif sdk == "python":
        venv = pathlib.Path(env["NET_VENV"])
        rc, text = run([str(HELPERS / "ensure-tools.sh"), str(venv)], ROOT, env, 600)
        if rc != 0:
            return Suite(None, f"could not install coverage.py into {venv}:\n{tail_of(text)}", False)
        # The wheel of the current sources, installed as the suite expects
        # (twice if need be: a build running at the same time from the same
        # tree, `make test-python` in another shell, removes build/ under it).
        for attempt in range(2):
            rc, text = run(["make", "--no-print-directory", "-C", str(SDK_DIRS["python"]), "install"],
                           ROOT, env, 900)
            if rc == 0:
                break
            time.sleep(10)
        if rc != 0:
            return Suite(None, f"make -C sdk-python install failed:\n{tail_of(text)}", False)
        for old in out.glob("python.coverage*"):
            old.unlink()
        tests = SDK_DIRS["python"] / "tests"
        penv = dict(env, NET_PARITY_COVERAGE=str(out))
        penv.pop("NET_LIBRARY_PATH", None)  # the wheel's bundled libnet, as `make test` does
        cmd = [str(venv / "bin" / "python"), "-m", "coverage", "run",
               f"--rcfile={HELPERS / 'python.coveragerc'}",
               "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={tests}", "-q"]
        rc, _ = run(cmd, tests, penv, timeout, log)
    else:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        nenv = dict(env, NODE_V8_COVERAGE=str(data))
        rc, _ = run(["make", "--no-print-directory", "-C", str(SDK_DIRS["node"]), "test"], ROOT,
                    nenv, timeout, log)
    took = time.monotonic() - started
    rel = log.relative_to(ROOT) if log.is_relative_to(ROOT) else log
    if rc == -999:
        note = f"the suite did not finish within {timeout:.0f} s (log: {rel}); coverage is of what ran"
    elif rc != 0:
        note = f"the suite failed (exit {rc}, log: {rel}); coverage is of what ran"
    else:
        note = f"suite ran under coverage in {took:.0f} s (log: {rel})"
    have = data.exists() and (not data.is_dir() or any(data.glob("*.json")))
    (out / f"{sdk}-suite.status").write_text(json.dumps({"ok": rc == 0, "note": note}) + "\n")
    return Suite(data if have else None, note, rc == 0)


def go_executed(api: Api, profile: pathlib.Path) -> None:
    """Marks each Go API entry with the number of its statements' blocks the
    suite ran, from a `go test -coverprofile` profile."""
    module = re.search(r"^module\s+(\S+)", (SDK_DIRS["go"] / "go.mod").read_text(), re.M)
    prefix = (module.group(1) if module else "") + "/netmesh/"
    blocks: Dict[str, List[Tuple[int, int, int]]] = {}
    for line in profile.read_text().splitlines()[1:]:
        m = re.match(r"^(.*):(\d+)\.\d+,(\d+)\.\d+ \d+ (\d+)$", line)
        if not m or not m.group(1).startswith(prefix):
            continue
        rel = m.group(1)[len(prefix):]
        if "/" in rel:
            continue  # a subpackage (netmesh/internal/...)
        blocks.setdefault(rel, []).append((int(m.group(2)), int(m.group(3)), int(m.group(4))))
    for e in api.entries.values():
        inside = [b for b in blocks.get(e["file"], []) if e["start_line"] <= b[0] and b[1] <= e["end_line"]]
        e["measured"] = bool(inside)
        e["executed"] = (sum(1 for b in inside if b[2] > 0), len(inside))
    for sites in api.call_sites.values():
        for s in sites:
            s["ran"] = any(b[0] <= s["line"] <= b[1] and b[2] > 0 for b in blocks.get(s["file"], []))


# ---- the check ----------------------------------------------------------------------------


def check_sdk(sdk: str, table: Dict[str, Dict[str, Any]], api: Api, with_coverage: bool,
              problems: List[str], notes: List[str]) -> Tuple[int, int]:
    """Checks one SDK against the table; returns (wrappers checked, internal entries)."""
    checked = internal = 0
    suite_name = {"go": "sdk-go's `go test`", "python": "sdk-python's pytest suite",
                  "node": "sdk-node's node:test suite"}[sdk]
    for fn, entry in table.items():
        value = entry.get(sdk)
        if isinstance(value, dict):
            internal += 1
            # No public wrapper by design: whatever uses it inside the SDK
            # must still be exercised by the suite.
            sites = api.call_sites.get(fn, [])
            if with_coverage and sites and not any(s.get("ran") for s in sites):
                where = ", ".join(f"{s['file']}:{s['line']}" for s in sites[:4])
                problems.append(f"{sdk}: {fn} is internal ({value['internal']}), but none of the SDK's "
                                f"uses of it ({where}) is executed by {suite_name}")
            elif not sites:
                notes.append(f"{sdk}: {fn} is not used by the SDK ({value['internal']})")
            continue
        before = len(problems)
        for wrapper in value or []:
            name, _, arity = wrapper.rpartition("/")
            checked += 1
            found = api.lookup(name)
            if found is None:
                problems.append(f"{sdk}: {fn} has no public wrapper: {name} is not in the {sdk} "
                                f"SDK's public API (table: {wrapper})")
                continue
            if str(found["arity"]) != arity:
                problems.append(f"{sdk}: {fn}: {name} has arity {found['arity']}, the table says "
                                f"{arity} (update the table if the signature changed on purpose)")
            if not with_coverage:
                continue
            if sdk == "go":
                ran, blocks = found.get("executed", (0, 0))
                if not found.get("measured"):
                    notes.append(f"{sdk}: {name} has no statements to measure")
                elif ran == 0:
                    problems.append(f"{sdk}: {fn}: {name} ({found['file']}:{found['start_line']}) is "
                                    f"never executed by {suite_name} (0 of {blocks} blocks ran)")
            elif sdk == "python":
                if found.get("lines_run", 0) == 0:
                    problems.append(f"{sdk}: {fn}: {name} (netmesh/{found['file']}:{found['first']}) "
                                    f"is never executed by {suite_name}")
            else:
                if found.get("calls", 0) == 0:
                    problems.append(f"{sdk}: {fn}: {name} ({found['file']}:{found['line'] + 1}) is "
                                    f"never executed by {suite_name}")
        # Its wrappers all ran, but maybe on other paths than the one calling
        # libnet (a batch wrapper choosing between two C functions): one of
        # the SDK's own calls of it must run too.
        sites = api.call_sites.get(fn, [])
        if with_coverage and len(problems) == before and sites and not any(s.get("ran") for s in sites):
            where = ", ".join(f"{s['file']}:{s['line']}" for s in sites[:4])
            problems.append(f"{sdk}: {fn}: its wrappers run, but none of the SDK's calls of it "
                            f"({where}) is executed by {suite_name}")
    return checked, internal


def main() -> int:
    global TABLE
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Coverage data (written by this script, or by an SDK's own test target, and reused "
               "when newer than the SDK's sources and the staged libnet): "
               "<out>/go.cover (go test -coverprofile), <out>/python.coverage (coverage.py data "
               "file, source_pkgs = netmesh), <out>/node-v8/ (NODE_V8_COVERAGE).")
    parser.add_argument("--sdk", default=",".join(SDKS), help="comma-separated: go,python,node")
    parser.add_argument("--no-coverage", action="store_true",
                        help="check names and arities only; do not run the suites")
    parser.add_argument("--rerun", action="store_true",
                        help="run the suites under coverage even if fresh data exists")
    parser.add_argument("--out", default=str(ROOT / "target" / "parity"),
                        help="where coverage data, suite logs and the report go")
    parser.add_argument("--table", default=str(TABLE), help="the parity table (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds each suite may take under coverage (default 900)")
    args = parser.parse_args()
    TABLE = pathlib.Path(args.table).resolve()
    sdks = [s for s in args.sdk.split(",") if s]
    for s in sdks:
        if s not in SDKS:
            parser.error(f"unknown SDK {s!r}")
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = sdk_env()
    # One check at a time per output directory: two would clobber each
    # other's coverage data (several engineers share a machine).
    lock = open(out / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"parity: another check is using {out}; waiting for it ...", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)

    problems: List[str] = []
    notes: List[str] = []
    functions = header_functions()
    table = load_table(functions, problems)
    summary: List[str] = []
    for sdk in sdks:
        coverage: Optional[pathlib.Path] = None
        if not args.no_coverage:
            data = coverage_paths(out)[sdk]
            if not args.rerun and fresh(data, sdk, env):
                shown = data.relative_to(ROOT) if data.is_relative_to(ROOT) else data
                suite = Suite(data, f"reused the coverage data in {shown} (newer than the "
                                    f"SDK's sources and libnet)", True)
            else:
                print(f"parity: {sdk}: running the suite under coverage ...", flush=True)
                suite = run_suite(sdk, env, out, args.timeout)
            notes.append(f"{sdk}: {suite.note}")
            if suite.data is None:
                problems.append(f"{sdk}: no coverage data: {suite.note}")
            # A suite that failed still measured what ran (its failures are
            # test-<sdk>'s to report): wrappers it did not reach show below.
            coverage = suite.data
        try:
            api = introspect(sdk, env, coverage if sdk != "go" else None)
        except (RuntimeError, json.JSONDecodeError, OSError) as e:
            problems.append(f"{sdk}: cannot read the public API: {e}")
            summary.append(f"{sdk}: public API unreadable")
            continue
        if sdk == "go" and coverage is not None:
            go_executed(api, coverage)
        before = len(problems)
        checked, internal = check_sdk(sdk, table, api, coverage is not None, problems, notes)
        n = len(problems) - before
        what = "present with their arity" + (" and executed by the suite" if coverage else "")
        summary.append(f"{sdk}: {checked} wrappers of {len(functions) - internal} functions "
                       f"({internal} internal by design), {len(api.entries)} public members: "
                       + ("all " + what if n == 0 else f"{n} problem(s)"))
        (out / f"{sdk}-api.json").write_text(json.dumps(list(api.entries.values()), indent=1) + "\n")

    report = []
    shown = TABLE.relative_to(ROOT) if TABLE.is_relative_to(ROOT) else TABLE
    report.append(f"SDK parity against {shown} ({len(functions)} functions in "
                  f"include/net.h)")
    report += [f"  {line}" for line in summary]
    for line in notes:
        report.append(f"  note: {line}")
    if problems:
        report.append(f"FAILED: {len(problems)} problem(s):")
        report += [f"  {p}" for p in problems]
    else:
        report.append("parity: ok")
    text = "\n".join(report) + "\n"
    (out / "report.txt").write_text(text)
    sys.stdout.write(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
