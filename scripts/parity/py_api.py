"""py_api: the public API of the Python SDK as Python itself sees it, as
JSON on stdout, for scripts/check-sdk-parity.py.

    <venv>/bin/python scripts/parity/py_api.py [<coverage data file>]

Imports ``netmesh`` (the installed wheel, what the SDK's suite tests) and
walks its public names (``__all__`` when defined, else every name not
starting with ``_``): every function (its arity: parameters other than
self/cls, ``*args``/``**kwargs`` not counted), and for every class defined
in netmesh its public methods, static and class methods and properties,
inherited ones included (``Tasks.find_many`` is ``Model.find_many``). Each
entry carries the function's file and line range (``inspect``). With a
coverage.py data file (the suite run under ``coverage run``), each entry
also gets ``lines_run``: how many lines of its body the suite executed
(the ``def`` line, its decorators and its docstring, which run at import,
do not count). ``call_sites`` lists, per C function, the statements of the
package that call it (``lib.net_*``), with ``ran`` once coverage is known.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import sys
import textwrap
from typing import Any, Dict, List, Optional, Set

import netmesh

PKG_DIR = os.path.dirname(os.path.abspath(netmesh.__file__))

#: Special methods that are part of a class's public API (what ``len()``,
#: ``for``, ``with`` and ``async with`` call).
PUBLIC_DUNDERS = frozenset((
    "__init__", "__len__", "__contains__", "__getitem__", "__iter__", "__next__", "__aiter__",
    "__anext__", "__enter__", "__exit__", "__aenter__", "__aexit__", "__call__", "__bool__",
))


def own(obj: Any) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return module == "netmesh" or module.startswith("netmesh.")


def arity(fn: Any) -> int:
    sig = inspect.signature(fn)
    n = 0
    for name, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        n += 1
    return n


def body_lines(fn: Any) -> Optional[Dict[str, Any]]:
    """The file and the lines of `fn`'s body that can run (not its def,
    decorators or docstring)."""
    fn = inspect.unwrap(fn)
    try:
        file = inspect.getsourcefile(fn)
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    if not file or not os.path.abspath(file).startswith(PKG_DIR + os.sep):
        return None
    tree = ast.parse(textwrap.dedent("".join(lines)))
    node = tree.body[0]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str) and len(body) > 1:
        body = body[1:]  # the docstring
    first = start + body[0].lineno - 1
    last = start + node.end_lineno - 1
    return {"file": os.path.relpath(file, PKG_DIR), "first": first, "last": last}


def public_names() -> List[str]:
    names = getattr(netmesh, "__all__", None)
    if names is None:
        names = [n for n in dir(netmesh) if not n.startswith("_")]
    return sorted(set(names))


def main() -> None:
    entries: List[Dict[str, Any]] = []

    def add(name: str, kind: str, fn: Any, arity_value: Any) -> None:
        where = body_lines(fn)
        if where is None:
            return
        entry = {"name": name, "kind": kind, "arity": arity_value}
        entry.update(where)
        entries.append(entry)

    for name in public_names():
        obj = getattr(netmesh, name)
        if inspect.isclass(obj) and own(obj):
            seen: Set[str] = set()
            for klass in obj.__mro__:
                if not own(klass):
                    continue
                for attr, raw in vars(klass).items():
                    if attr in seen or (attr.startswith("_") and attr not in PUBLIC_DUNDERS):
                        continue
                    seen.add(attr)
                    full = f"{name}.{attr}"
                    if isinstance(raw, property):
                        if raw.fget is not None:
                            add(full, "property", raw.fget, "prop")
                    elif isinstance(raw, staticmethod):
                        add(full, "staticmethod", raw.__func__, arity(raw.__func__))
                    elif isinstance(raw, classmethod):
                        fn = raw.__func__
                        add(full, "classmethod", fn, arity(fn) - 1)
                    elif inspect.isfunction(raw):
                        add(full, "method", raw, arity(raw) - 1)
        elif inspect.isfunction(obj) and own(obj):
            add(name, "function", obj, arity(obj))

    # Every place the package calls a C function (lib.net_*), as the first
    # line of the statement making the call (the line coverage.py records).
    sites: Dict[str, List[Dict[str, Any]]] = {}

    def scan(node: ast.AST, rel: str, stmt_line: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                scan(child, rel, child.lineno)  # its own statement
                continue
            if isinstance(child, ast.Attribute) and child.attr.startswith("net_") \
                    and isinstance(child.value, ast.Name) and child.value.id == "lib":
                sites.setdefault(child.attr, []).append({"file": rel, "line": stmt_line})
            scan(child, rel, stmt_line)

    for root, _dirs, files in os.walk(PKG_DIR):
        for fname in files:
            if fname.endswith(".py") and not fname.startswith("_cdef"):
                path = os.path.join(root, fname)
                scan(ast.parse(open(path, encoding="utf-8").read()), os.path.relpath(path, PKG_DIR), 0)

    if len(sys.argv) > 1:
        import coverage  # the venv's coverage.py

        data = coverage.CoverageData(basename=sys.argv[1])
        data.read()
        executed: Dict[str, Set[int]] = {}
        for measured in data.measured_files():
            real = os.path.realpath(measured)
            if real.startswith(os.path.realpath(PKG_DIR) + os.sep):
                rel = os.path.relpath(real, os.path.realpath(PKG_DIR))
                executed.setdefault(rel, set()).update(data.lines(measured) or [])
        for e in entries:
            run = executed.get(e["file"], set())
            e["lines_run"] = sum(1 for n in range(e["first"], e["last"] + 1) if n in run)
            e["file_measured"] = e["file"] in executed
        for found in sites.values():
            for s in found:
                s["ran"] = s["line"] in executed.get(s["file"], set())

    json.dump({"api": entries, "call_sites": sites}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
