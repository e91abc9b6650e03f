"""Checks the Python blocks of the guides against the netmesh package.

Run by scripts/check-doc-snippets.py with the project venv's Python, netmesh
importable (PYTHONPATH=sdk-python) and NET_LIBRARY_PATH naming the staged
libnet. Input: a JSON file of blocks ({id, path, line, code, setup, declare,
no_run, tmp}). Output: one JSON line, a list of {id, kind, errors, detail}.

Each block (after its setup and declarations) is

1. compiled (top-level ``await`` / ``async for`` allowed);
2. walked statement by statement with a small type inference: a name is
   bound to a netmesh module, class or instance from imports, calls whose
   return annotation names a netmesh class, ``with ... as``, annotations
   (``log: RedexFile``); every name imported from netmesh, every attribute
   read on netmesh or on a value whose class is known must exist, and every
   call of a known function or method must bind to its signature
   (``inspect.signature(...).bind``);
3. executed in a fresh interpreter when it has no free variables, no
   ``declare:`` context and no ``no-run:`` reason.
"""

import ast
import builtins
import dataclasses
import inspect
import json
import re
import subprocess
import sys
import typing

import netmesh

import collections.abc

MODULE, CLASS, INST, FUNC, ITER = "module", "class", "inst", "func", "iter"
CONTAINERS = {list, tuple, collections.abc.Iterator, collections.abc.Iterable, collections.abc.Sequence,
              collections.abc.AsyncIterator, collections.abc.AsyncIterable}


def resolve_hint(hint, receiver=None):
    """A type hint as (INST, cls) when it names one class, else None."""
    if hint is None or hint is inspect.Signature.empty:
        return None
    if isinstance(hint, str):
        hint = getattr(netmesh, hint.strip("'\""), None)
        return (INST, hint) if inspect.isclass(hint) else None
    if isinstance(hint, typing.TypeVar):
        # A bound TypeVar is a "self type" (`def __enter__(self: _H) -> _H`);
        # a free one (a generic's element type) is unknown here.
        return (INST, receiver) if receiver is not None and hint.__bound__ is not None else None
    origin = typing.get_origin(hint)
    if origin in CONTAINERS and typing.get_args(hint):
        element = resolve_hint(typing.get_args(hint)[0], receiver)
        return (ITER, element) if element is not None else None
    if origin is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return resolve_hint(args[0], receiver) if len(args) == 1 else None
    if inspect.isclass(hint) and origin is None:
        return (INST, hint)
    return None


def return_type(fn, receiver=None):
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable forward references
        try:
            hints = {"return": inspect.signature(fn).return_annotation}
        except (TypeError, ValueError):
            return None
    return resolve_hint(hints.get("return"), receiver)


def field_type(cls, attr):
    """The annotated type of a field (dataclass, NamedTuple, attribute)."""
    try:
        return resolve_hint(typing.get_type_hints(cls).get(attr), cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations
        return None


def instance_attrs(cls):
    """Attribute names an instance of cls has beyond those of the class."""
    names = set()
    for k in inspect.getmro(cls):
        names.update(getattr(k, "__annotations__", {}) or {})
        slots = getattr(k, "__slots__", ())
        names.update([slots] if isinstance(slots, str) else slots)
        if k.__module__.startswith("netmesh"):
            try:
                names.update(re.findall(r"self\.(\w+)\s*[:=]", inspect.getsource(k)))
            except (OSError, TypeError):
                pass
    if dataclasses.is_dataclass(cls):
        names.update(f.name for f in dataclasses.fields(cls))
    return names


class Checker:
    def __init__(self, path, first_line):
        self.path = path
        self.first_line = first_line
        self.errors = []
        self.env = {}

    def error(self, node, msg):
        self.errors.append(f"{self.path}:{self.first_line + node.lineno - 1}: {msg}")

    # -- expressions -------------------------------------------------------
    def infer(self, node):
        if isinstance(node, ast.Name):
            return self.env.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.infer(node.value)
            return self.attribute(node, base, node.attr)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Await):
            return None
        return None

    def attribute(self, node, base, attr):
        if base is None:
            return None
        kind, obj = base[0], base[1]
        if kind == MODULE:
            if not hasattr(obj, attr):
                self.error(node, f"module {obj.__name__} has no attribute {attr!r}")
                return None
            return self.value(getattr(obj, attr))
        if kind == CLASS:
            if not hasattr(obj, attr):
                self.error(node, f"netmesh.{obj.__name__} has no attribute {attr!r}")
                return None
            static = inspect.getattr_static(obj, attr)
            if isinstance(static, (classmethod, staticmethod)):
                return (FUNC, getattr(obj, attr), obj, False)
            return self.value(getattr(obj, attr))
        if kind == INST:
            cls = obj
            if hasattr(cls, attr):
                static = inspect.getattr_static(cls, attr)
                if isinstance(static, property):
                    return return_type(static.fget, cls) if static.fget else None
                if isinstance(static, (classmethod, staticmethod)):
                    return (FUNC, getattr(cls, attr), cls, False)
                if inspect.isfunction(static):
                    return (FUNC, static, cls, True)
                return field_type(cls, attr)
            if attr in instance_attrs(cls):
                return field_type(cls, attr)
            self.error(node, f"a netmesh.{cls.__name__} has no attribute {attr!r}")
            return None
        return None

    def value(self, obj):
        if inspect.ismodule(obj):
            return (MODULE, obj)
        if inspect.isclass(obj):
            return (CLASS, obj)
        if callable(obj):
            return (FUNC, obj, None, False)
        return None

    def call(self, node):
        target = self.infer(node.func)
        for a in node.args:
            self.expr_walk(a.value if isinstance(a, ast.Starred) else a)
        for k in node.keywords:
            self.expr_walk(k.value)
        if target is None:
            return None
        if target[0] == CLASS:
            cls = target[1]
            if issubclass(cls, BaseException) or not cls.__module__.startswith("netmesh"):
                return (INST, cls)
            self.bind(node, cls, f"netmesh.{cls.__name__}(...)", drop_self=False)
            return (INST, cls)
        if target[0] == FUNC:
            fn, receiver, drop_self = target[1], target[2], target[3]
            name = getattr(fn, "__qualname__", getattr(fn, "__name__", "?"))
            self.bind(node, fn, name + "(...)", drop_self)
            return return_type(fn, receiver)
        return None

    def bind(self, node, fn, what, drop_self):
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            return
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return
        args = [None] * (len(node.args) + (1 if drop_self else 0))
        try:
            sig.bind(*args, **{k.arg: None for k in node.keywords})
        except TypeError as e:
            shown = str(sig)
            if drop_self:
                shown = re.sub(r"^\(self,?\s*", "(", shown)
            self.error(node, f"{what}: {e} (signature {shown})")

    # -- statements --------------------------------------------------------
    def bind_target(self, target, typ):
        if isinstance(target, ast.Name):
            self.env[target.id] = typ
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self.bind_target(t, None)
        else:
            self.infer(target)

    def annotation(self, node):
        try:
            hint = eval(compile(ast.Expression(node), "<annotation>", "eval"), vars(netmesh))  # noqa: S307
        except Exception as e:  # noqa: BLE001
            self.error(node, f"annotation {ast.unparse(node)} does not name a netmesh type: {e}")
            return None
        return resolve_hint(hint)

    def stmts(self, body):
        for s in body:
            self.stmt(s)

    def stmt(self, s):
        if isinstance(s, ast.ImportFrom):
            if s.module == "netmesh" or (s.module or "").startswith("netmesh."):
                mod = __import__(s.module, fromlist=["_"])
                for a in s.names:
                    if not hasattr(mod, a.name):
                        self.error(s, f"{s.module} has no {a.name!r}")
                        self.env[a.asname or a.name] = None
                    else:
                        self.env[a.asname or a.name] = self.value(getattr(mod, a.name))
            else:
                for a in s.names:
                    self.env[a.asname or a.name] = None
        elif isinstance(s, ast.Import):
            for a in s.names:
                if a.name == "netmesh" or a.name.startswith("netmesh."):
                    try:
                        mod = __import__(a.name, fromlist=["_"])
                    except ImportError as e:
                        self.error(s, str(e))
                        continue
                    self.env[a.asname or a.name.split(".")[0]] = (MODULE, mod if a.asname else netmesh)
                else:
                    self.env[a.asname or a.name.split(".")[0]] = None
        elif isinstance(s, ast.Assign):
            typ = self.infer(s.value)
            for t in s.targets:
                self.bind_target(t, typ)
        elif isinstance(s, ast.AnnAssign):
            typ = self.annotation(s.annotation)
            if s.value is not None:
                inferred = self.infer(s.value)
                typ = inferred or typ
            self.bind_target(s.target, typ)
        elif isinstance(s, ast.AugAssign):
            self.infer(s.value)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                typ = self.infer(item.context_expr)
                if item.optional_vars is not None:
                    self.bind_target(item.optional_vars, typ)
            self.stmts(s.body)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            self.bind_target(s.target, self.element(s.iter, isinstance(s, ast.AsyncFor)))
            self.stmts(s.body)
            self.stmts(s.orelse)
        elif isinstance(s, ast.If):
            self.expr_walk(s.test)
            narrowed = self.isinstance_test(s.test)
            saved = dict(self.env)
            if narrowed:
                self.env[narrowed[0]] = narrowed[1]
            self.stmts(s.body)
            if narrowed:
                self.env[narrowed[0]] = saved.get(narrowed[0])
            self.stmts(s.orelse)
        elif isinstance(s, ast.While):
            self.expr_walk(s.test)
            self.stmts(s.body)
            self.stmts(s.orelse)
        elif isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            self.stmts(s.body)
            for h in s.handlers:
                if h.type is not None:
                    self.infer(h.type)
                if h.name:
                    self.env[h.name] = None
                self.stmts(h.body)
            self.stmts(s.orelse)
            self.stmts(s.finalbody)
        elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            saved = dict(self.env)
            for a in s.args.args + s.args.kwonlyargs + s.args.posonlyargs:
                self.env[a.arg] = self.annotation(a.annotation) if a.annotation else None
            self.stmts(s.body)
            self.env = saved
            self.env[s.name] = None
        elif isinstance(s, ast.Expr):
            self.expr_walk(s.value)
        elif isinstance(s, ast.Return) and s.value is not None:
            self.expr_walk(s.value)
        elif type(s).__name__ == "Match":
            self.expr_walk(s.subject)
            for case in s.cases:
                self.stmts(case.body)

    def element(self, node, is_async):
        """What iterating over `node` yields, when its type says."""
        typ = self.infer(node)
        if typ is None:
            return None
        if typ[0] == ITER:
            return typ[1]
        if typ[0] == INST:
            method = getattr(typ[1], "__aiter__" if is_async else "__iter__", None)
            if method is not None:
                it = return_type(method, typ[1])
                if it is not None and it[0] == ITER:
                    return it[1]
        return None

    def isinstance_test(self, test):
        """`isinstance(name, Cls)` with Cls a known class: (name, its type)."""
        if (isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "isinstance"
                and len(test.args) == 2 and isinstance(test.args[0], ast.Name)):
            cls = self.infer(test.args[1])
            if cls is not None and cls[0] == CLASS:
                return test.args[0].id, (INST, cls[1])
        return None

    def expr_walk(self, node):
        """Checks every call and attribute inside an expression."""
        if isinstance(node, (ast.Call, ast.Attribute, ast.Name)):
            self.infer(node)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr_walk(child)


def free_names(tree):
    bound, loaded = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return sorted(loaded - bound)


def check(block):
    errors = []
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT | ast.PyCF_ONLY_AST
    setup = "\n".join(block["setup"])
    declare = "\n".join(block["declare"])
    trees = []
    for text, first, label in ((declare, block["line"] - 1, "declare"), (setup, block["line"] - 1, "setup"),
                               (block["code"], block["line"], "block")):
        try:
            tree = compile(text, f"{block['path']}", "exec", flags)
        except SyntaxError as e:
            errors.append(f"{block['path']}:{first + (e.lineno or 1) - 1}: {label}: syntax error: {e.msg}")
            return {"id": block["id"], "kind": "fragment", "errors": errors, "detail": ""}
        trees.append((tree, first if label != "block" else block["line"]))
    checker = Checker(block["path"], block["line"])
    for tree, first in trees:
        checker.first_line = first
        checker.stmts(tree.body)
    errors += checker.errors
    declared = {t.target.id for t in trees[0][0].body
                if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
    whole = ast.parse(setup + "\n" + block["code"]) if not errors else None
    free = [n for n in free_names(whole) if n not in declared] if whole is not None else []
    if free or block["declare"]:
        kind = "fragment"
        detail = "names, attributes and signatures checked"
    else:
        kind = "program"
        if block["no_run"]:
            detail = f"checked, not run ({block['no_run']})"
        elif errors:
            detail = ""
        else:
            source = setup + "\n" + block["code"]
            try:
                p = subprocess.run([sys.executable, "-X", "dev", "-c", source],
                                   cwd=block["tmp"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, timeout=60)
                if p.returncode != 0:
                    errors.append(f"{block['path']}:{block['line']}: running it failed "
                                  f"(exit status {p.returncode}):\n{p.stdout}")
            except subprocess.TimeoutExpired:
                errors.append(f"{block['path']}:{block['line']}: running it took over 60 s")
            detail = "checked and run"
    if free:
        errors.append(f"{block['path']}:{block['line']}: free names {', '.join(free)}: give them a value "
                      "(<!-- snippet: CODE -->) or a type (<!-- snippet: declare: name: Type -->)")
    return {"id": block["id"], "kind": kind, "errors": errors, "detail": detail}


def main():
    with open(sys.argv[1]) as f:
        blocks = json.load(f)
    results = []
    for b in blocks:
        try:
            results.append(check(b))
        except Exception as e:  # noqa: BLE001 - a checker bug fails this block, not the run
            results.append({"id": b["id"], "kind": "fragment", "detail": "",
                            "errors": [f"{b['path']}:{b['line']}: pycheck.py failed: {e!r}"]})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
