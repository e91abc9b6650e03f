#!/usr/bin/env python3
"""SDK parity: every function and every NET_* name in include/net.h must have a
counterpart in each language SDK's library source.

A counterpart is the C name appearing literally in the SDK's non-test source
(Go: C.net_identity_sign / C.NET_ERR_...; Python: lib.net_identity_sign; Node:
the koffi declaration and the constant table). The check fails, listing what
is missing, when the header grows and an SDK does not.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER = ROOT / "include" / "net.h"

SDKS = {
    "go": (ROOT / "sdk-go" / "netmesh", lambda p: p.suffix == ".go" and not p.name.endswith("_test.go")),
    "python": (ROOT / "sdk-python" / "netmesh", lambda p: p.suffix == ".py"),
    "node": (ROOT / "sdk-node", lambda p: p.suffix in (".js", ".cjs", ".mjs")
             and "node_modules" not in p.parts and "test" not in p.parts and "bench" not in p.parts),
}


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def header_names() -> tuple[set[str], set[str]]:
    code = strip_comments(HEADER.read_text())
    functions = set(re.findall(r"\b(net_[a-z0-9_]+)\s*\(", code))
    defines = set(re.findall(r"#define\s+(NET_[A-Z0-9_]+)\s", code)) - {"NET_H"}
    enum_body = re.search(r"enum\s+net_status_t[^{]*\{(.*?)\};", code, flags=re.S)
    if not enum_body:
        sys.exit("check-sdk-parity: cannot find enum net_status_t in include/net.h")
    statuses = set(re.findall(r"\b(NET_[A-Z0-9_]+)\s*=", enum_body.group(1)))
    if not functions or not statuses:
        sys.exit("check-sdk-parity: parsed nothing from include/net.h")
    return functions, defines | statuses


def sdk_source(directory: pathlib.Path, wanted) -> str:
    files = [p for p in directory.rglob("*") if p.is_file() and wanted(p)]
    return "\n".join(p.read_text(errors="replace") for p in files)


def main() -> int:
    functions, constants = header_names()
    failed = False
    for sdk, (directory, wanted) in SDKS.items():
        if not directory.is_dir():
            print(f"parity: {sdk}: {directory} does not exist")
            failed = True
            continue
        source = sdk_source(directory, wanted)
        missing = sorted(n for n in functions | constants if not re.search(rf"\b{n}\b", source))
        if missing:
            failed = True
            print(f"parity: {sdk} SDK has no counterpart for: {', '.join(missing)}")
        else:
            print(f"parity: {sdk}: all {len(functions)} functions and {len(constants)} constants/status codes covered")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
