#!/usr/bin/env python3
"""Self-test of scripts/gen-sdk-bindings.py (run by `make header-check`).

The real header is grown the way the ABI is expected to grow (a cancellation
handle, a `net_probe_error_t` out-parameter holding a nested struct, a log level
enum, a log callback typedef, an integer alias, a u64 and a string constant,
a status in an existing block, a new family, a family appearing where a lone
code was) and the generator must:

  - parse it, and agree with the C compiler about every declaration (--verify);
  - emit files each language accepts: cffi takes the cdef, koffi declares the
    types and parses every prototype, Node parses the JS, gofmt accepts (and
    would not change) the Go, Python compiles its modules;
  - derive the new error classes and families from the names alone;
  - refuse what it does not understand (a union, a variadic function) and a
    model the compiler disagrees with.

Parts needing a tool that is missing (cc, node with sdk-node/node_modules, the
venv's cffi, gofmt) are skipped with a note.
"""

from __future__ import annotations

import importlib.util
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_sdk_bindings", os.path.join(HERE, "gen-sdk-bindings.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_sdk_bindings"] = mod
    spec.loader.exec_module(mod)
    return mod


gen = load_generator()

GROWN_TYPES = """
// A cancellation token: any blocking call accepts one; cancel it from any
// thread.
typedef struct net_probe_token_t net_probe_token_t;

// A log severity.
enum net_probe_level_t
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    // Something failed.
    NET_PROBE_ERROR = 1,
    // Something looks wrong.
    NET_PROBE_WARN,
    // For the curious.
    NET_PROBE_DEBUG = 5,
};
#ifndef __cplusplus
typedef int32_t net_probe_level_t;
#endif // __cplusplus

// A sequence number.
typedef uint64_t net_probe_seq_t;

// The error of a blocking call, returned with the call.
typedef struct {
    // The status (as returned).
    net_status_t status;
    // The message (release with `net_bytes_free`).
    net_bytes_t message;
    // The sequence the call got to.
    net_probe_seq_t seq;
} net_probe_error_t;

// Receives one log record.
typedef void (*net_probe_callback_t)(net_probe_level_t level,
                                   const uint8_t *message,
                                   size_t message_len,
                                   void *user);

"""

GROWN_FUNCTIONS = """
// Creates a cancellation token.
net_status_t net_probe_token_new(net_probe_token_t **out);

// Cancels every call waiting on the token.
void net_probe_token_cancel(const net_probe_token_t *cancel);

// Frees a token.
void net_probe_token_free(net_probe_token_t *cancel);

// Waits for `seq`, cancellable; the error comes back with the call.
net_status_t net_probe_wait_ex(const net_model_t *model,
                                       net_probe_seq_t seq,
                                       uint32_t timeout_ms,
                                       const net_probe_token_t *cancel,
                                       net_probe_error_t *error_out);

// Installs the log callback (NULL: none).
net_status_t net_probe_set_callback(net_probe_callback_t callback, void *user);

// The next buffered log record.
net_status_t net_probe_next(net_probe_level_t *level_out, net_bytes_t *message_out);

// Arguments for a batch of ids.
net_status_t net_probe_ids(const uint8_t *const *ids, const size_t *lens, size_t count);
"""

GROWN_DEFINES = """
// The largest sequence number.
#define NET_PROBE_SEQ_MAX 18446744073709551615ULL

// The log target of libnet.
#define NET_PROBE_TARGET "net"

"""

GROWN_STATUSES = """    // The call stalled behind another `net_probe_token_t` (not a failure of
    // the operation).
    NET_ERR_STALLED = -7,
    // A channel name is longer than 255 bytes.
    NET_ERR_CHANNEL_TOO_LONG = -49,
    // The log callback is already installed.
    NET_ERR_PROBE_BUSY = -900,
    // The log buffer overflowed; records were dropped.
    NET_ERR_PROBE_OVERFLOW = -901,
"""


def grown_header() -> str:
    with open(os.path.join(ROOT, "include", "net.h"), encoding="utf-8") as f:
        h = f.read()
    anchor = "};\n#ifndef __cplusplus\ntypedef int32_t net_status_t;"
    assert anchor in h, "net_status_t's closing lines moved: update this test"
    h = h.replace(anchor, GROWN_STATUSES + anchor, 1)
    anchor = '#ifdef __cplusplus\nextern "C" {'
    assert anchor in h
    h = h.replace(anchor, GROWN_TYPES + anchor, 1)
    anchor = '#ifdef __cplusplus\n}  // extern "C"'
    assert anchor in h
    h = h.replace(anchor, GROWN_FUNCTIONS + "\n" + anchor, 1)
    anchor = "// Status code returned by every fallible"
    assert anchor in h
    h = h.replace(anchor, GROWN_DEFINES.lstrip("\n") + anchor, 1)
    return h


failures = []
skipped = []


def check(cond: bool, what: str) -> None:
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="gen-sdk-bindings-test.")
    try:
        # Not named net.h: --verify must include the header it was given.
        header = os.path.join(tmp, "include", "grown-net.h")
        os.makedirs(os.path.dirname(header))
        text = grown_header()
        with open(header, "w", encoding="utf-8") as f:
            f.write(text)
        model = gen.parse_header(text)
        files = gen.generate(model)
        gen.write(files, tmp)

        # The model.
        names = {f.name for f in model.functions}
        check({"net_probe_token_new", "net_probe_set_callback", "net_probe_next", "net_probe_wait_ex"} <= names,
              "new functions parsed")
        levels = [e for e in model.enums if e.name == "net_probe_level_t"]
        check(levels and [v.value for v in levels[0].variants] == [1, 2, 5] and levels[0].repr == "int32_t",
              "implicit enum values and the enum's integer typedef")
        defines = {d.name: d.value for d in model.defines}
        check(defines.get("NET_PROBE_SEQ_MAX") == 2**64 - 1 and defines.get("NET_PROBE_TARGET") == "net",
              "u64 and string defines")

        # Derived names and families.
        classes = {c.name: c for c in gen.error_classes(model)}
        check(classes["StalledError"].parent == "NetError", "a lone general code has no family")
        check(classes["ChannelError"].status is None and classes["ChannelNameError"].parent == "ChannelError",
              "a second NET_ERR_CHANNEL_* code makes a ChannelError family (ChannelNameError keeps its name)")
        check(classes["ProbeBusyError"].parent == "ProbeError" and classes["ProbeOverflowError"].parent == "ProbeError",
              "a new block of NET_ERR_PROBE_* codes is a ProbeError family")
        fams = {f.base: (f.lowest, f.highest) for f in gen.families(model)}
        check(fams.get("ProbeError") == (-999, -900) and fams.get("ChannelError") == (-49, -40), "family ranges")
        go = files["sdk-go/netmesh/errors_gen.go"]
        check(re.search(r"\n\tErrStalled +?= StatusStalled\n", go) is not None
              and "\tStatusStalled Status = C.NET_ERR_STALLED\n" in go, "Go constant and sentinel")
        check('"NET_ERR_STALLED", "the call stalled behind another net_probe_token_t"' in go,
              "Go text is the doc's first sentence without backticks or the trailing parenthetical")

        # koffi directions.
        node = files["sdk-node/lib/native.gen.js"]
        for proto in (
            "net_status_t net_probe_token_new(_Out_ net_probe_token_t **out)",
            "void net_probe_token_cancel(const net_probe_token_t *cancel)",
            "net_status_t net_probe_wait_ex(const net_model_t *model, net_probe_seq_t seq, "
            "uint32_t timeout_ms, const net_probe_token_t *cancel, _Inout_ net_probe_error_t *error_out)",
            "net_status_t net_probe_next(_Out_ net_probe_level_t *level_out, _Inout_ net_bytes_t *message_out)",
            "net_status_t net_probe_ids(const uint8_t *const *ids, const size_t *lens, size_t count)",
            "net_status_t net_probe_set_callback(net_probe_callback_t callback, void *user)",
        ):
            check(f"'{proto}'" in node, f"koffi prototype: {proto}")
        check("NET_PROBE_SEQ_MAX: 18446744073709551615n" in node, "u64 constant as a BigInt")

        # The C compiler agrees with the model.
        if shutil.which("cc") or shutil.which("gcc"):
            check(gen.verify(model, header) == 0, "--verify on the grown header")
            bad = gen.parse_header(text)
            fn = next(f for f in bad.functions if f.name == "net_redis_dedup_check_batch")
            fn.params[-1].ctype = gen.CType("uint8_t", False, (False,))  # the drift issue #12 found
            check(gen.verify(bad, header, quiet=True) != 0, "--verify catches a parameter type the header does not have")
        else:
            skipped.append("C compiler checks (no cc)")

        # Refusals.
        for snippet, what in (
            ("typedef union { int a; float b; } net_u_t;\n", "a union"),
            ("int net_printf(const char *fmt, ...);\n", "a variadic function"),
            ("#if NET_X > 1\n#endif\n", "an #if expression"),
        ):
            try:
                gen.parse_header(text.replace('#ifdef __cplusplus\nextern "C" {', snippet + '#ifdef __cplusplus\nextern "C" {', 1))
                check(False, f"refuses {what}")
            except gen.HeaderError:
                pass

        # Python: modules compile, cffi takes the cdef.
        for rel in files:
            if rel.endswith(".py"):
                py_compile.compile(os.path.join(tmp, rel), doraise=True)
        venv_py = os.path.join(ROOT, "target", "venv", "bin", "python")
        py = venv_py if os.path.exists(venv_py) else sys.executable
        code = (
            "import importlib.util, sys\n"
            "from cffi import FFI\n"
            "spec = importlib.util.spec_from_file_location('c', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "ffi = FFI(); ffi.cdef(m.CDEF)\n"
            "assert ffi.sizeof('net_probe_error_t') == 32, ffi.sizeof('net_probe_error_t')\n"
            "assert ffi.typeof('net_probe_callback_t').kind == 'function'\n"
            "print('cffi ok')\n"
        )
        r = run([py, "-c", code, os.path.join(tmp, "sdk-python/netmesh/_cdef.py")])
        if "No module named 'cffi'" in r.stderr:
            skipped.append("cffi (no venv: make setup-python)")
        else:
            check(r.returncode == 0, "cffi accepts the cdef: " + r.stderr.strip()[-400:])

        # Node: the JS parses; koffi declares every type and parses every prototype.
        koffi_dir = os.path.join(ROOT, "sdk-node", "node_modules", "koffi")
        if shutil.which("node") and os.path.isdir(koffi_dir):
            for rel in files:
                if rel.endswith(".js"):
                    r = run(["node", "--check", os.path.join(tmp, rel)])
                    check(r.returncode == 0, f"node --check {rel}: {r.stderr.strip()[-400:]}")
            script = (
                "const koffi = require(process.argv[1]);\n"
                "const g = require(process.argv[2]);\n"
                "g.defineTypes(koffi); g.defineTypes(koffi);\n"
                "for (const p of g.PROTOTYPES) koffi.proto(p);\n"
                "if (koffi.sizeof('net_probe_error_t') !== 32) throw new Error('net_probe_error_t size');\n"
                "console.log(JSON.stringify({n: g.PROTOTYPES.length, log: g.ENUMS.net_probe_level_t}));\n"
            )
            r = run(["node", "-e", script, koffi_dir, os.path.join(tmp, "sdk-node/lib/native.gen.js")])
            check(r.returncode == 0, "koffi takes the types and prototypes: " + r.stderr.strip()[-600:])
            if r.returncode == 0:
                out = json.loads(r.stdout)
                check(out["n"] == len(model.functions) and out["log"]["NET_PROBE_WARN"] == 2, "koffi tables")
        else:
            skipped.append("Node/koffi (make setup-node)")

        # Go: gofmt accepts the file and would not change it.
        gofmt = shutil.which("gofmt")
        if gofmt:
            path = os.path.join(tmp, "sdk-go/netmesh/errors_gen.go")
            r = run([gofmt, "-l", path])
            check(r.returncode == 0 and not r.stdout.strip(), f"gofmt: {r.stdout}{r.stderr}")
        else:
            skipped.append("gofmt")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for s in skipped:
        print(f"gen-sdk-bindings self-test: skipped {s}")
    if failures:
        print(f"gen-sdk-bindings self-test: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("gen-sdk-bindings self-test: a grown header generates valid bindings for every SDK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
