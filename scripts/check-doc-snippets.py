#!/usr/bin/env python3
"""Prove the SDK guides' code snippets against the real SDKs (issue 18, item 6).

Every fenced block of a checked language (``c``, ``go``, ``python``,
``js``) in the guides listed in GUIDES is extracted and checked against the
staged libnet and the SDKs in this checkout:

* C: a block with ``main`` is compiled (``-Wall -Wextra -Werror -pedantic``),
  linked against the staged libnet and run. Any other block is a fragment,
  compiled inside ``void snippet(void)`` after ``#include <net.h>`` and the
  standard headers; a line ``...`` separates file-scope code above it (a
  helper function) from statements below. The ``net_*`` symbols the object
  needs must be exported by the staged libnet.
* Go: a ``package main`` block is built, vetted and run; the other blocks become
  ``func snippetN()`` bodies in one package importing netmesh and the
  standard packages they name, type-checked in one ``go build`` (only the
  "declared and not used" / "imported and not used" errors are ignored). A
  block of ``type`` declarations only must match the netmesh declaration of
  the same name (``go doc``).
* Python: see doc-snippets/pycheck.py (syntax, imports, attributes and
  signatures through inspect; blocks without free variables are executed).
* JS: ``node --check``, a type check of every block against the SDK's
  ``index.d.ts`` (tsc, checkJs), the names required from 'netmesh' exist at
  run time, and blocks without free variables are executed.

Context comes from HTML comments right before a block (invisible when
rendered), each ``<!-- snippet: ... -->``:

* ``skip: REASON``: not checked (printed with the reason);
* ``no-run: REASON``: a complete program compiled but not run;
* ``tmpdir: /some/path``: the path is replaced by a fresh temporary
  directory before the block is compiled or run;
* ``declare: CODE``: declarations of free variables that have a type but no
  value (C and Go declarations, Python annotations ``log: RedexFile``, JS
  ``/** @type {T} */ let x;``); a block with any is never executed;
* anything else is setup code placed before the block (C/Go: file-scope /
  function-scope declarations; Python/JS: statements giving values).

The prose is held to net.h too (check_claims): every constant or status
cited with its value, docs/sdk-c.md's table of the calls with positive
outcomes (against each call's comment in the header) and its list of the
calls taking a cancellation token.

Output: one line per block, a summary, exit status 1 on any failure.
``--self-test`` feeds the checker one stale block per language and
asserts that each is reported as failing.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HELPERS = os.path.join(ROOT, "scripts", "doc-snippets")
GUIDES = [
    "README.md",
    "docs/sdk-c.md",
    "docs/sdk-go.md",
    "docs/sdk-python.md",
    "docs/sdk-node.md",
    "docs/cortex.md",
    "sdk-python/README.md",
    "sdk-node/README.md",
]
LANGS = {"c": "c", "go": "go", "python": "python", "py": "python", "js": "js", "javascript": "js"}
OPEN_RE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)\s*$")
DIRECTIVE_RE = re.compile(r"<!--\s*snippet:(.*?)-->", re.S)


class Block:
    def __init__(self, path, line, lang, code, directives):
        self.path = path          # relative to ROOT
        self.line = line          # 1-based line of the first code line
        self.lang = lang
        self.code = code
        self.skip = None
        self.no_run = None
        self.tmpdirs = []
        self.setup = []           # code with values
        self.declare = []         # typed declarations without values
        self.bad_directives = []
        for d in directives:
            d = d.strip()
            key, _, rest = d.partition(":")
            key = key.strip()
            if key in ("skip", "no-run", "tmpdir", "declare") and not rest.strip():
                self.bad_directives.append(f"<!-- snippet: {d} --> needs a value after the colon")
            elif key == "skip":
                self.skip = rest.strip()
            elif key == "no-run":
                self.no_run = rest.strip()
            elif key == "tmpdir":
                self.tmpdirs.append(rest.strip())
            elif key == "declare":
                self.declare.append(rest.strip())
            else:
                self.setup.append(d)
        self.kind = None          # "program" or "fragment", set by the checker
        self.status = None        # "ok" / "FAIL" / "skipped"
        self.detail = ""

    @property
    def where(self):
        return f"{self.path}:{self.line}"

    def substituted(self, text, tmp):
        for i, prefix in enumerate(self.tmpdirs):
            text = text.replace(prefix, os.path.join(tmp, f"d{i}"))
        return text


def extract(path, text):
    """Every fenced block of a checked language, with its directives."""
    lines = text.split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        m = OPEN_RE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        j = i + 1
        while j < len(lines) and not (lines[j].strip() == fence and lines[j].startswith(indent)):
            j += 1
        body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1:j]]
        if lang in LANGS:
            # Directives: the HTML comments directly above the opening fence.
            k = i - 1
            while k >= 0 and lines[k].strip() == "":
                k -= 1
            above = []
            while k >= 0 and lines[k].strip().endswith("-->"):
                start = k
                while start >= 0 and "<!--" not in lines[start]:
                    start -= 1
                if start < 0:
                    break
                above.insert(0, "\n".join(lines[start:k + 1]))
                k = start - 1
                while k >= 0 and lines[k].strip() == "":
                    k -= 1
            directives = []
            for comment in above:
                directives += [m2.group(1) for m2 in DIRECTIVE_RE.finditer(comment)]
            blocks.append(Block(path, i + 2, LANGS[lang], "\n".join(body) + "\n", directives))
        i = j + 1
    return blocks


def run(cmd, env=None, cwd=None, timeout=120, input=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def fail(block, detail):
    block.status = "FAIL"
    block.detail = (block.detail + "\n" + detail).strip()


# --------------------------------------------------------------------- C ---

C_HEADERS = ["stdbool.h", "stdint.h", "inttypes.h", "stddef.h", "stdio.h", "stdlib.h",
             "string.h", "pthread.h", "net.h"]
C_WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
# A fragment is a piece of a function: what it leaves unused is the reader's.
C_FRAGMENT_QUIET = ["-Wno-unused-variable", "-Wno-unused-but-set-variable",
                    "-Wno-unused-label", "-Wno-unused-parameter", "-Wno-unused-function",
                    "-Wno-unused-value"]


class Env:
    def __init__(self, stage, work):
        self.stage = stage
        self.work = work
        self.cflags = ["-I" + os.path.join(stage, "include")]
        self.libdir = os.path.join(stage, "lib")
        self.libnet = os.path.join(self.libdir, "libnet.so")
        self.exports = None

    def run_env(self, **extra):
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = self.libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        env["NET_LIBRARY_PATH"] = self.libnet
        env.setdefault("NETMESH_LOG_LEVEL", "warn")
        env.update(extra)
        return env

    def libnet_exports(self):
        if self.exports is None:
            rc, out = run(["nm", "-D", "--defined-only", self.libnet])
            if rc != 0:
                raise SystemExit(f"check-doc-snippets: nm -D {self.libnet} failed:\n{out}")
            self.exports = {l.split()[-1] for l in out.splitlines() if l.split()}
        return self.exports


C_LITERAL_WITH_LENGTH = re.compile(r'\(const uint8_t \*\)\s*"((?:[^"\\]|\\.)*)"\s*,\s*(\d+)\b')


def c_literal_lengths(block, code):
    """A string literal passed with its length: the length must be right."""
    for m in C_LITERAL_WITH_LENGTH.finditer(code):
        value = m.group(1).encode().decode("unicode_escape").encode("utf-8")
        if len(value) != int(m.group(2)):
            fail(block, f"{block.path}:{block.line + code.count(chr(10), 0, m.start())}: "
                 f"\"{m.group(1)}\" is {len(value)} bytes, passed as {m.group(2)}")


def check_c(block, env, idx):
    d = os.path.join(env.work, "c", f"b{idx}")
    os.makedirs(d, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="snippet-", dir=d)
    code = block.substituted(block.code, tmp)
    doc = os.path.join(ROOT, block.path)
    src = os.path.join(d, "snippet.c")
    if re.search(r"\bint\s+main\s*\(", code):
        block.kind = "program"
        with open(src, "w") as f:
            f.write(f'#line {block.line} "{doc}"\n{code}')
        exe = os.path.join(d, "snippet")
        rc, out = run(["gcc", *C_WARN, "-O1", src, *env.cflags, "-L" + env.libdir, "-lnet",
                       "-pthread", "-o", exe])
        if rc != 0:
            return fail(block, out)
        if block.no_run:
            block.detail = f"compiled, linked, not run ({block.no_run})"
        else:
            rc, out = run([exe], env=env.run_env(), cwd=tmp, timeout=60)
            if rc != 0:
                return fail(block, f"exit status {rc}:\n{out}")
            block.detail = "compiled, linked and run"
        c_literal_lengths(block, code)
        if block.status is None:
            block.status = "ok"
        return
    block.kind = "fragment"
    # A line "..." elides code: what is above the first one is file scope (a
    # helper function), what is below the last one the statements.
    lines = code.split("\n")
    split = [n for n, l in enumerate(lines) if l.strip() == "..."]
    file_scope, body_start = [], 0
    if split:
        file_scope = lines[:split[0]]
        body_start = split[-1] + 1
    body = lines[body_start:]
    text = "".join(f"#include <{h}>\n" for h in C_HEADERS)
    for decl in block.declare + block.setup:
        text += f"#line {block.line - 1} \"{doc}\"\n{decl}\n"
    if file_scope:
        text += f'#line {block.line} "{doc}"\n' + "\n".join(file_scope) + "\n"
    text += "void snippet(void);\nvoid snippet(void) {\n"
    text += f'#line {block.line + body_start} "{doc}"\n' + "\n".join(body) + "\n"
    text += "goto cleanup;\ncleanup:;\n}\n"
    with open(src, "w") as f:
        f.write(text)
    obj = os.path.join(d, "snippet.o")
    rc, out = run(["gcc", *C_WARN, *C_FRAGMENT_QUIET, "-c", src, *env.cflags, "-o", obj])
    if rc != 0:
        return fail(block, out)
    rc, out = run(["nm", "-u", obj])
    missing = sorted({l.split()[-1] for l in out.splitlines() if l.split() and l.split()[-1].startswith("net_")}
                     - env.libnet_exports())
    if missing:
        return fail(block, "not exported by the staged libnet: " + ", ".join(missing))
    c_literal_lengths(block, code)
    if block.status is None:
        block.status = "ok"
        block.detail = "compiled"


# -------------------------------------------------------------------- Go ---

GO_MODULE = "github.com/netmesh/net/sdk-go"
GO_STD = {"context": "context", "errors": "errors", "fmt": "fmt", "io": "io", "log": "log",
          "os": "os", "time": "time", "slog": "log/slog", "json": "encoding/json",
          "strings": "strings", "sync": "sync", "bytes": "bytes", "netmesh": GO_MODULE + "/netmesh"}
GO_IGNORED = [re.compile(r"declared and not used: \w+$"),
              re.compile(r'"[^"]+" imported and not used$'),
              re.compile(r'"[^"]+" imported as \w+ and not used$')]
GO_TYPE_DECL = re.compile(r"^type\s+(\w+)\b")


def go_env(env):
    e = env.run_env(GOTOOLCHAIN="local", GOFLAGS="-mod=mod -buildvcs=false", GOPROXY="off",
                    GOWORK="off", CGO_ENABLED="1")
    e["CGO_CFLAGS"] = "-g -O2 -I" + os.path.join(env.stage, "include")
    e["CGO_LDFLAGS"] = "-g -O2 -L" + env.libdir
    e["PKG_CONFIG_PATH"] = os.path.join(env.libdir, "pkgconfig")
    return e


def go_imports(text):
    found = []
    for name, path in GO_STD.items():
        if re.search(r"(?<![\w.])" + name + r"\.", text):
            found.append(path)
    return found


def go_type_decls(code):
    """The block's declarations if it is nothing but `type X ...` ones."""
    decls, current = [], None
    for line in code.split("\n"):
        if not line.strip():
            continue
        m = GO_TYPE_DECL.match(line)
        if m:
            current = [m.group(1), [line]]
            decls.append(current)
        elif current is not None and (line.startswith((" ", "\t", "}"))):
            current[1].append(line)
        else:
            return None
    return decls or None


def go_normalize(decl):
    """A type declaration's fields: comments and layout removed."""
    out = []
    for line in decl.split("\n"):
        line = re.sub(r"//.*", "", line).strip()
        if line:
            out.append(" ".join(line.split()))
    text = " ".join(out)
    text = re.sub(r"\s*([{}\[\],])\s*", r"\1", text)
    return text


def check_go_decls(block, decls, env):
    block.kind = "declaration"
    genv = go_env(env)
    for name, lines in decls:
        rc, out = run(["go", "doc", "./netmesh", name], env=genv, cwd=os.path.join(ROOT, "sdk-go"))
        if rc != 0:
            return fail(block, f"netmesh has no type {name}:\n{out}")
        real = []
        for l in out.split("\n"):
            if l.startswith("type ") or real:
                real.append(l)
                if l.startswith("}") or (l.startswith("type ") and l.rstrip().endswith("}")):
                    break
        want = go_normalize("\n".join(lines))
        have = go_normalize("\n".join(real))
        if want != have:
            return fail(block, f"the guide's `type {name}` differs from netmesh's:\n"
                        f"  guide:   {want}\n  netmesh: {have}")
    block.status = "ok"
    block.detail = "matches the netmesh declaration (go doc)"


def check_go(blocks, env):
    base = os.path.join(env.work, "go")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(os.path.join(base, "frags"))
    with open(os.path.join(base, "go.mod"), "w") as f:
        f.write(f"module docsnippets\n\ngo 1.22\n\nrequire {GO_MODULE} v0.0.0\n\n"
                f"replace {GO_MODULE} => {os.path.join(ROOT, 'sdk-go')}\n")
    frags, programs = [], []
    spans = []   # (path, first line, last line, block)
    for n, b in enumerate(blocks):
        decls = go_type_decls(b.code)
        if decls:
            check_go_decls(b, decls, env)
            continue
        doc = os.path.join(ROOT, b.path)
        tmp = tempfile.mkdtemp(prefix="snippet-", dir=base)
        code = b.substituted(b.code, tmp)
        nlines = code.count("\n")
        spans.append((doc, b.line - 1, b.line + nlines, b))
        if re.search(r"^package main\b", code, re.M):
            b.kind = "program"
            d = os.path.join(base, "progs", f"p{n}")
            os.makedirs(d)
            with open(os.path.join(d, "main.go"), "w") as f:
                f.write(f"//line {doc}:{b.line}\n{code}")
            programs.append((b, d, tmp))
            continue
        b.kind = "fragment"
        imports = [l for l in code.split("\n") if l.startswith("import ")]
        body = "\n".join("" if l.startswith("import ") else l for l in code.split("\n"))
        context = "\n".join(b.declare + b.setup)
        paths = go_imports(body + "\n" + context)
        for l in imports:
            m = re.match(r'import\s+"([^"]+)"', l)
            if m and m.group(1) not in paths:
                paths.append(m.group(1))
        text = "package frags\n\nimport (\n" + "".join(f'\t"{p}"\n' for p in paths) + ")\n\n"
        text += f"func snippet{n}() {{\n"
        if context:
            text += f"//line {doc}:{b.line - 1}\n{context}\n"
        text += f"//line {doc}:{b.line}\n{body}\n}}\n"
        with open(os.path.join(base, "frags", f"snippet{n}.go"), "w") as f:
            f.write(text)
        frags.append(b)
    genv = go_env(env)

    def owner(msg_path, line):
        for doc, first, last, b in spans:
            if doc == msg_path and first <= line <= last:
                return b
        return None

    def attribute(out, candidates):
        unplaced = []
        for l in out.splitlines():
            m = re.match(r"^(?:\./)?(/[^:]+|[^:\s]+):(\d+)(?::\d+)?: (.*)$", l)
            if not m:
                if l.strip() and not l.startswith("#"):
                    unplaced.append(l)
                continue
            path = m.group(1)
            if not os.path.isabs(path):
                # go prints a path relative to base when that is shorter
                # (../../self-test/go.md): normalise it to match the spans.
                path = os.path.normpath(os.path.join(base, path))
            b = owner(path, int(m.group(2)))
            msg = m.group(3)
            if any(r.search(msg) for r in GO_IGNORED):
                continue
            if b is None or b not in candidates:
                unplaced.append(l)
            else:
                fail(b, f"{b.path}:{m.group(2)}: {msg}")
        return unplaced

    if frags:
        rc, out = run(["go", "build", "-gcflags=-e", "./frags"], env=genv, cwd=base, timeout=600)
        unplaced = attribute(out, frags) if rc != 0 else []
        if rc != 0 and unplaced and not any(b.status == "FAIL" for b in frags):
            for b in frags:
                fail(b, "go build failed:\n" + "\n".join(unplaced))
        for b in frags:
            if b.status is None:
                b.status = "ok"
                b.detail = "type-checked (go build)"
    if programs:
        bindir = os.path.join(base, "bin")
        os.makedirs(bindir)
        for b, d, tmp in programs:
            exe = os.path.join(bindir, os.path.basename(d))
            rc, out = run(["go", "build", "-o", exe, "."], env=genv, cwd=d, timeout=600)
            if rc == 0:
                rc, out = run(["go", "vet", "."], env=genv, cwd=d, timeout=600)
            if rc != 0:
                fail(b, out)
                continue
            if b.no_run:
                b.status, b.detail = "ok", f"built, not run ({b.no_run})"
                continue
            rc, out = run([exe], env=genv, cwd=tmp, timeout=60)
            if rc != 0:
                fail(b, f"exit status {rc}:\n{out}")
                continue
            b.status, b.detail = "ok", "built, vetted and run"


# ------------------------------------------------------- Python and JS ---

def to_json(blocks, tmp_root):
    out = []
    for n, b in enumerate(blocks):
        tmp = tempfile.mkdtemp(prefix="snippet-", dir=tmp_root)
        out.append({"id": n, "path": b.path, "line": b.line,
                    "code": b.substituted(b.code, tmp),
                    "setup": [b.substituted(s, tmp) for s in b.setup],
                    "declare": b.declare, "no_run": b.no_run, "tmp": tmp})
    return out


def apply_results(blocks, out, tool):
    try:
        results = json.loads(out.strip().split("\n")[-1])
    except (ValueError, IndexError):
        for b in blocks:
            fail(b, f"{tool} did not report:\n{out}")
        return
    for r in results:
        b = blocks[r["id"]]
        b.kind = r["kind"]
        if r["errors"]:
            fail(b, "\n".join(r["errors"]))
        else:
            b.status = "ok"
            b.detail = r["detail"]


def check_python(blocks, env, python):
    base = os.path.join(env.work, "python")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    spec = os.path.join(base, "blocks.json")
    with open(spec, "w") as f:
        json.dump(to_json(blocks, base), f)
    # netmesh from the checkout (no wheel build), leaving no bytecode in it.
    penv = env.run_env(PYTHONPATH=os.path.join(ROOT, "sdk-python"), PYTHONDONTWRITEBYTECODE="1")
    rc, out = run([python, os.path.join(HELPERS, "pycheck.py"), spec], env=penv, timeout=600)
    apply_results(blocks, out, "pycheck.py")


def check_js(blocks, env):
    base = os.path.join(env.work, "js")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    spec = os.path.join(base, "blocks.json")
    with open(spec, "w") as f:
        json.dump(to_json(blocks, base), f)
    jenv = env.run_env(NETMESH_SDK=os.path.join(ROOT, "sdk-node"))
    rc, out = run(["node", os.path.join(HELPERS, "jscheck.js"), spec, base], env=jenv, timeout=600)
    apply_results(blocks, out, "jscheck.js")


# ------------------------------------------------------ claims in prose ---

POSITIVE = ("NET_TIMEOUT", "NET_END", "NET_LAGGED")


def header_facts(stage):
    with open(os.path.join(stage, "include", "net.h")) as f:
        text = f.read()
    values = {k: int(v) for k, v in re.findall(r"\b(NET_[A-Z0-9_]+) = (-?\d+)", text)}
    values.update({k: int(v) for k, v in re.findall(r"#define (NET_[A-Z0-9_]+) (-?\d+)\b", text)})
    funcs = {m.group(2): (m.group(1), m.group(3)) for m in
             re.finditer(r"((?://[^\n]*\n)+)net_status_t (net_\w+)\(([^;]*)\);", text)}
    return values, funcs


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def check_claims(paths, stage):
    """What the guides' prose states about net.h: the value of every constant
    or status cited with its number, the calls with positive outcomes (the
    table in docs/sdk-c.md) and the calls that take a cancellation token."""
    values, funcs = header_facts(stage)
    out = []
    for path in paths:
        with open(os.path.join(ROOT, path)) as f:
            text = f.read()
        cited = [(m.start(), m.group(1), int(m.group(2))) for m in re.finditer(
            r"`(?:Status\.|Constants\.)?(NET_[A-Z0-9_]+)`? (?:\(|=== |\| )(-?\d+)\b", text)]
        if cited:
            b = Block(path, line_of(text, cited[0][0]), "net.h", "", [])
            b.kind, b.status = "claims", "ok"
            for pos, name, value in cited:
                if values.get(name) != value:
                    fail(b, f"{path}:{line_of(text, pos)}: says {name} is {value}; net.h: {values.get(name)}")
            for m in re.finditer(r"`NET_ERR_([A-Z]+)_\*` \((-?\d+)…(-?\d+)\)", text):
                family = [v for k, v in values.items() if k.startswith(f"NET_ERR_{m.group(1)}_")]
                if (max(family), min(family)) != (int(m.group(2)), int(m.group(3))):
                    fail(b, f"{path}:{line_of(text, m.start())}: NET_ERR_{m.group(1)}_* are "
                         f"{max(family)}…{min(family)} in net.h")
            if b.status == "ok":
                b.detail = f"{len(cited)} constants and statuses cited with their value match net.h"
            out.append(b)
        table = re.search(r"\| call \| positive outcomes \|\n\s*\|[-|]+\|\n((?:[ \t]*\|.*\|\n)+)", text)
        if table:
            b = Block(path, line_of(text, table.start()), "net.h", "", [])
            b.kind, b.status = "claims", "ok"
            listed = {}
            for row in table.group(1).strip().split("\n"):
                calls, outcomes = row.strip().strip("|").split("|")
                for call in re.findall(r"`(net_\w+)`", calls):
                    listed[call] = set(re.findall(r"`(NET_\w+)`", outcomes))
            for name, (comment, _) in funcs.items():
                said = {p for p in POSITIVE if p in comment}
                if name.endswith(("_free", "_close")):
                    continue
                if said != listed.get(name, set()):
                    fail(b, f"{path}: the table gives {name} {sorted(listed.get(name, set())) or 'no positive outcome'}; "
                         f"its comment in net.h: {sorted(said) or 'none'}")
            for name in listed:
                if name not in funcs:
                    fail(b, f"{path}: the table names {name}, which net.h does not declare")
            if b.status == "ok":
                b.detail = f"the positive outcomes of {len(listed)} calls match their net.h comments"
            out.append(b)
        blocking = re.search(r"They are (`net_\w+`(?:,|, and| and|\s)*)+", text)
        if blocking and "Pass `NULL, NULL`" in text[blocking.end():blocking.end() + 40]:
            b = Block(path, line_of(text, blocking.start()), "net.h", "", [])
            b.kind, b.status = "claims", "ok"
            said = set(re.findall(r"`(net_\w+)`", blocking.group(0)))
            real = {n for n, (_, params) in funcs.items() if "net_cancel_t *cancel" in params
                    and "net_error_t *error_out" in params}
            if said != real:
                fail(b, f"{path}: the calls taking a cancel token and a net_error_t: guide lists "
                     f"{sorted(said - real)} that do not, misses {sorted(real - said)}")
            else:
                b.detail = f"the {len(real)} calls taking a cancel token and a net_error_t match net.h"
            out.append(b)
    return out


# ------------------------------------------------------------- driver ---

def check_all(blocks, env, python):
    os.makedirs(env.work, exist_ok=True)
    for b in blocks:
        if b.bad_directives:
            b.kind = "block"
            fail(b, "\n".join(f"{b.where}: {e}" for e in b.bad_directives))
        elif b.skip:
            b.status, b.kind, b.detail = "skipped", "block", b.skip
    todo = [b for b in blocks if b.status is None]
    by = {lang: [b for b in todo if b.lang == lang] for lang in ("c", "go", "python", "js")}
    shutil.rmtree(os.path.join(env.work, "c"), ignore_errors=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        jobs = [pool.submit(check_go, by["go"], env) if by["go"] else None,
                pool.submit(check_python, by["python"], env, python) if by["python"] else None,
                pool.submit(check_js, by["js"], env) if by["js"] else None]
        jobs += [pool.submit(check_c, b, env, n) for n, b in enumerate(by["c"])]
        for j in jobs:
            if j is not None:
                j.result()
    for b in todo:
        if b.status is None:
            fail(b, f"{b.where}: not checked (checker error)")


def report(blocks):
    counts = {}
    for b in blocks:
        label = f"{b.lang} {b.kind or 'block'}"
        line = f"{b.where} {label}: {b.status}"
        if b.status == "skipped":
            line += f" ({b.detail})"
        elif b.status == "ok" and b.detail:
            line += f" ({b.detail})"
        print(line)
        if b.status == "FAIL":
            print(textwrap.indent(b.detail, "    "))
        counts[b.status] = counts.get(b.status, 0) + 1
    per_file = {}
    for b in blocks:
        c = per_file.setdefault(b.path, {"run": 0, "checked": 0, "claims": 0, "skipped": 0, "failed": 0})
        if b.status == "FAIL":
            c["failed"] += 1
        elif b.status == "skipped":
            c["skipped"] += 1
        elif b.kind == "claims":
            c["claims"] += 1
        elif "run" in b.detail and "not run" not in b.detail:
            c["run"] += 1
        else:
            c["checked"] += 1
    for path, c in per_file.items():
        print(f"  {path}: {c['run']} blocks run, {c['checked']} compiled or checked without running, "
              f"{c['skipped']} skipped, {c['claims']} prose checks, {c['failed']} failed")
    passed, failed, skipped = counts.get("ok", 0), counts.get("FAIL", 0), counts.get("skipped", 0)
    print(f"snippets: {passed} passed, {failed} failed, {skipped} skipped")
    return failed == 0


SELF_TEST = {
    "c": ("```c\nnet_identity_t *id = NULL;\nnet_identity_generate_from_nothing(&id);\n```\n",
          "```c\nnet_identity_t *id = NULL;\nnet_identity_generate(&id);\nnet_identity_free(id);\n```\n"),
    "c program": ("```c\n#include <net.h>\nint main(void) { return net_abi_version() == NET_ABI_VERSION ? 3 : 0; }\n```\n",
                  "```c\n#include <net.h>\nint main(void) { return net_abi_version() == NET_ABI_VERSION ? 0 : 3; }\n```\n"),
    "c length": ("<!-- snippet: declare: net_bus_t *bus; -->\n```c\nnet_bytes_t e = {0}, m = {0};\n"
                 "net_bus_poll(bus, (const uint8_t *)\"{\\\"limit\\\":10}\", 13, &e, &m, NULL, NULL);\n```\n",
                 "<!-- snippet: declare: net_bus_t *bus; -->\n```c\nnet_bytes_t e = {0}, m = {0};\n"
                 "net_bus_poll(bus, (const uint8_t *)\"{\\\"limit\\\":10}\", 12, &e, &m, NULL, NULL);\n```\n"),
    "go": ("```go\nid, _ := netmesh.GenerateIdentity()\n_ = id.SignEverything([]byte(\"x\"))\n```\n",
           "```go\nid, _ := netmesh.GenerateIdentity()\n_, _ = id.Sign([]byte(\"x\"))\n```\n"),
    "go arity": ("```go\n_, _ = netmesh.ChannelHash(\"a\", \"b\")\n```\n",
                 "```go\n_, _ = netmesh.ChannelHash(\"a\")\n```\n"),
    "c arity": ("<!-- snippet: declare: net_mesh_t *b; -->\n```c\nuint64_t peer, stream; net_bytes_t data;\n"
                "net_mesh_recv_next(b, NET_WAIT_FOREVER, &peer, &stream, &data, NULL, NULL);\n```\n",
                "<!-- snippet: declare: net_mesh_t *b; -->\n```c\nuint64_t peer, stream, dropped; net_bytes_t data;\n"
                "net_mesh_recv_next(b, NET_WAIT_FOREVER, &peer, &stream, &data, &dropped, NULL, NULL, NULL);\n```\n"),
    "go declaration": ("```go\ntype Tasks struct{ *Model[Memory, TaskFilter] }\n```\n",
                       "```go\ntype Tasks struct{ *Model[Task, TaskFilter] }\n```\n"),
    "go program": ("```go\npackage main\n\nimport \"github.com/netmesh/net/sdk-go/netmesh\"\n\n"
                   "func main() {\n\tif err := netmesh.CheckABI(); err == nil {\n\t\tpanic(\"stale\")\n\t}\n}\n```\n",
                   "```go\npackage main\n\nimport \"github.com/netmesh/net/sdk-go/netmesh\"\n\n"
                   "func main() {\n\tif err := netmesh.CheckABI(); err != nil {\n\t\tpanic(err)\n\t}\n}\n```\n"),
    "python": ("```python\nfrom netmesh import Identity, no_such_function\n```\n",
               "```python\nfrom netmesh import Identity, channel_hash\n```\n"),
    "python attribute": ("```python\nfrom netmesh import Identity\nwith Identity.generate() as a:\n    a.sign_all(b'x')\n```\n",
                         "```python\nfrom netmesh import Identity\nwith Identity.generate() as a:\n    a.sign(b'x')\n```\n"),
    "python arity": ("<!-- snippet: declare: f: RedexFile -->\n```python\nfrom netmesh import RedexFile\nf.append(b'a', b'b')\n```\n",
                     "<!-- snippet: declare: f: RedexFile -->\n```python\nfrom netmesh import RedexFile\nf.append(b'a')\n```\n"),
    "python run": ("```python\nfrom netmesh import channel_hash\nassert channel_hash('sensors/lidar') == 1\n```\n",
                   "```python\nfrom netmesh import channel_hash\nassert channel_hash('sensors/lidar') == 0xe5d8\n```\n"),
    "js": ("```js\nconst { Identity, noSuchThing } = require('netmesh');\n```\n",
           "```js\nconst { Identity, channelHash } = require('netmesh');\n```\n"),
    "js method": ("```js\nconst { Identity } = require('netmesh');\nconst a = Identity.generate();\na.signEverything('x');\n```\n",
                  "```js\nconst { Identity } = require('netmesh');\nconst a = Identity.generate();\na.sign('x');\na.close();\n```\n"),
    "js run": ("```js\nconst { channelHash } = require('netmesh');\nif (channelHash('sensors/lidar') !== 1) throw new Error('wrong hash');\n```\n",
               "```js\nconst { channelHash } = require('netmesh');\nif (channelHash('sensors/lidar') !== 0xe5d8) throw new Error('wrong hash');\n```\n"),
}


STALE_CLAIMS = {
    "status value": "- `NET_ERR_BUSY` (-7): the free could not finish\n",
    "outcomes table": "| call | positive outcomes |\n|---|---|\n| `net_redex_tail_next` | `NET_TIMEOUT` |\n",
    "blocking calls": "They are `net_redex_tail_next` and `net_bus_flush`. Pass `NULL, NULL` for neither.\n",
}


def self_test(env, python):
    """Each stale block must fail and its corrected twin must pass."""
    bad, good = [], []
    for name, (stale, fixed) in SELF_TEST.items():
        for text, into in ((stale, bad), (fixed, good)):
            bs = extract(f"self-test/{name.replace(' ', '-')}.md", text)
            assert len(bs) == 1, name
            into.append((name, bs[0]))
    check_all([b for _, b in bad + good], env, python)
    ok = True
    for name, b in bad:
        if b.status != "FAIL":
            print(f"self-test: the stale {name} block was not reported ({b.status}: {b.detail})")
            ok = False
    for name, b in good:
        if b.status != "ok":
            print(f"self-test: the correct {name} block failed:\n{textwrap.indent(b.detail, '    ')}")
            ok = False
    # Stale prose: each must be reported; the C guide itself must pass.
    os.makedirs(env.work, exist_ok=True)
    for name, text in STALE_CLAIMS.items():
        path = os.path.join(env.work, f"claims-{name}.md")
        with open(path, "w") as f:
            f.write(text)
        results = check_claims([path], env.stage)
        if not results or all(b.status == "ok" for b in results):
            print(f"self-test: the stale claim ({name}) was not reported")
            ok = False
    for b in check_claims(["docs/sdk-c.md"], env.stage):
        if b.status != "ok":
            print(f"self-test: docs/sdk-c.md's claims failed:\n{textwrap.indent(b.detail, '    ')}")
            ok = False
    n = len(SELF_TEST) + len(STALE_CLAIMS)
    if ok:
        print(f"self-test: {n} stale blocks and claims reported, {len(SELF_TEST)} correct blocks "
              "and docs/sdk-c.md's claims accepted")
        print(f"self-test: {n + len(SELF_TEST) + 1} passed, 0 failed")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", default=os.environ.get("NET_STAGE", os.path.join(ROOT, "target", "stage")))
    ap.add_argument("--python", default=os.path.join(os.environ.get("NET_VENV", os.path.join(ROOT, "target", "venv")), "bin", "python"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "doc-snippets"))
    ap.add_argument("--self-test", action="store_true", help="prove the checker reports stale blocks")
    ap.add_argument("files", nargs="*", help="guides to check (default: all of them)")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.stage, "lib", "libnet.so")):
        raise SystemExit(f"check-doc-snippets: no libnet in {args.stage}: run 'make stage'")
    env = Env(os.path.abspath(args.stage), os.path.abspath(args.work))
    if args.self_test:
        env.work = os.path.join(env.work, "self-test")
        sys.exit(0 if self_test(env, args.python) else 1)
    blocks = []
    for path in args.files or GUIDES:
        rel = os.path.relpath(os.path.abspath(path), ROOT) if args.files else path
        with open(os.path.join(ROOT, rel)) as f:
            blocks += extract(rel, f.read())
    check_all(blocks, env, args.python)
    blocks += check_claims(args.files and [os.path.relpath(os.path.abspath(p), ROOT) for p in args.files]
                           or GUIDES, env.stage)
    sys.exit(0 if report(blocks) else 1)


if __name__ == "__main__":
    main()
