#!/usr/bin/env python3
"""Generates the low-level layer of every SDK from include/net.h.

    scripts/gen-sdk-bindings.py            write the generated files (run by `make header`)
    scripts/gen-sdk-bindings.py --check    fail, with a diff, if a committed file is stale
                                           (run by `make header-check`, part of `make test`)
    scripts/gen-sdk-bindings.py --verify   compile a C probe proving the parsed model is
                                           what a C compiler reads in net.h (--check does it too)
    scripts/gen-sdk-bindings.py --dump-model   the parsed header as JSON

Python 3 standard library only. include/net.h is cbindgen output, so it is
regular; this is still a real (small) parser, not a pile of regular
expressions: a C-mode preprocessor (include guard, `#ifdef __cplusplus`,
`#include`, value `#define`s), a tokenizer, and a declaration parser for
`#define`, `enum`, opaque and field-ful `typedef struct`, function-pointer and
plain typedefs, and function prototypes, each with its `//` doc comment. Any
construct it does not understand stops it with the line number, so a header
change it cannot follow fails `make header` loudly instead of producing a
subtly wrong binding. `--verify` then asks the C compiler to confirm every
parsed define, enum value, struct layout, typedef and prototype, and (with gcc)
that no function of the header was missed.

What it writes (every file starts with a "generated ... do not edit" line):

  sdk-node/lib/native.gen.js      status table, constants, other enums, koffi
                                  types (opaque handles, structs, aliases,
                                  callbacks) and a koffi prototype per function
  sdk-node/lib/native.gen.d.ts    StatusName / ConstantName and the tables' types
  sdk-node/lib/errors.gen.js      one NetError subclass per NET_ERR_* code, family
                                  bases, status -> class map, family code ranges
  sdk-node/lib/errors.gen.d.ts    their TypeScript declarations
  sdk-python/netmesh/_cdef.py     the cffi cdef (defines, enums, types, prototypes)
  sdk-python/netmesh/_status_gen.py   the Status IntEnum
  sdk-python/netmesh/_errors_gen.py   exception classes, ERROR_CLASSES, ERROR_AREAS
  sdk-go/netmesh/errors_gen.go    Status* constants, Err* sentinels, the
                                  status -> (C name, text) table

Everything is derived from the header:
  - class / constant names from the status name (NET_ERR_TOKEN_EXPIRED ->
    TokenExpiredError, StatusTokenExpired, ErrTokenExpired, Status.ERR_TOKEN_EXPIRED);
  - documentation from the status's doc comment, the Go error text from its
    first sentence;
  - error families: the codes are numbered in blocks (tens below 100,
    hundreds above: -20..-29, -100..-199, ...). A block of two or more codes
    whose names all start with the same word (NET_ERR_REDEX_*) is a family:
    its base class is named after that word (RedexError) and also catches
    codes of that block the SDK does not know yet;
  - koffi directions from the C types: `T **` outputs are _Out_, a non-const
    pointer to a scalar is _Out_ (koffi zero-fills it; a TypedArray is passed
    through as is), a non-const pointer to a struct is _Inout_ (libnet may
    read it, as net_bytes_free does; koffi zero-fills fields an object lacks),
    everything const or opaque is a plain input.

The only hand-chosen inputs are the language policies below (a class name
that is not the default, Python's extra exception bases). They name statuses,
and the generator fails if one names a status the header no longer has.
"""

from __future__ import annotations

import argparse
import builtins
import dataclasses
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join("include", "net.h")
SCRIPT = "scripts/gen-sdk-bindings.py"
STATUS_ENUM = "net_status_t"

# -- language policies (the only hand-chosen inputs) --------------------------

#: Class names (Node and Python) that are not the default `<Words>Error`.
CLASS_NAME_OVERRIDES: Dict[str, str] = {
    "NET_ERR_CHANNEL_INVALID_NAME": "ChannelNameError",
}

#: Python: extra bases of a status's exception class. ValueError marks a
#: status that means "the caller's input was wrong" (so `except ValueError`
#: works as Python users expect); RedexClosedError is also a ShuttingDownError
#: so one `except ShuttingDownError` covers every "used after close". A new
#: status gets no extra base until it is listed here.
PYTHON_EXTRA_BASES: Dict[str, Tuple[str, ...]] = {
    "NET_ERR_INVALID_ARGUMENT": ("ValueError",),
    "NET_ERR_INVALID_PUBLIC_KEY": ("ValueError",),
    "NET_ERR_TOKEN_INVALID_FORMAT": ("ValueError",),
    "NET_ERR_TOKEN_ZERO_TTL": ("ValueError",),
    "NET_ERR_ENVELOPE_INVALID_LENGTH": ("ValueError",),
    "NET_ERR_CHANNEL_INVALID_NAME": ("ValueError",),
    "NET_ERR_CHANNEL_CONFIG": ("ValueError",),
    "NET_ERR_REDEX_CLOSED": ("ShuttingDownError",),
    "NET_ERR_REDEX_INVALID_CONFIG": ("ValueError",),
    "NET_ERR_REDEX_INLINE_LENGTH": ("ValueError",),
    "NET_ERR_MESH_CONFIG": ("ValueError",),
    "NET_ERR_MESH_TOO_LARGE": ("ValueError",),
    "NET_ERR_MESH_CAPABILITIES": ("ValueError",),
    "NET_ERR_CORTEX_INVALID_QUERY": ("ValueError",),
    "NET_ERR_CORTEX_INVALID_CONFIG": ("ValueError",),
    "NET_ERR_CORTEX_SNAPSHOT": ("ValueError",),
    "NET_ERR_BUS_CONFIG": ("ValueError",),
    "NET_ERR_BUS_INVALID_REQUEST": ("ValueError",),
}

#: Go: words spelled as initialisms in identifiers (StatusRedexIO, StatusTokenZeroTTL).
GO_INITIALISMS = frozenset(
    "OK IO TTL ID IDS JSON URL URI API ABI UTF8 HTTP HTTPS TCP UDP IP CPU EOF UUID "
    "DNS TLS PSK RPC SQL XML HTML ASCII UID RSS".split()
)

# -- the model ----------------------------------------------------------------


class HeaderError(Exception):
    """net.h contains something this generator does not understand."""


@dataclasses.dataclass
class CType:
    base: str  # "uint8_t", "net_bytes_t", "unsigned int"
    const: bool = False  # `const` on the base type
    ptrs: Tuple[bool, ...] = ()  # one entry per `*`, True for `*const`
    array: Optional[int] = None  # `[N]` (struct fields only)

    def render(self, name: str = "") -> str:
        text = ("const " if self.const else "") + self.base
        stars = "".join("*const " if c else "*" for c in self.ptrs)
        if stars:
            text += " " + stars
            text = text + name if name else text.rstrip()
        elif name:
            text += " " + name
        if self.array is not None:
            text += f"[{self.array}]"
        return text

    def to_json(self) -> dict:
        return {"base": self.base, "const": self.const, "pointers": list(self.ptrs), "array": self.array}


@dataclasses.dataclass
class Param:
    name: str
    ctype: CType


@dataclasses.dataclass
class Define:
    name: str
    value: Union[int, str]
    doc: List[str]
    line: int


@dataclasses.dataclass
class Variant:
    name: str
    value: int
    doc: List[str]


@dataclasses.dataclass
class Enum:
    name: str
    variants: List[Variant]
    doc: List[str]
    line: int
    repr: Optional[str] = None  # the integer typedef beside it (`typedef int32_t net_status_t;`)
    typedef_form: bool = False  # `typedef enum { ... } name;`


@dataclasses.dataclass
class Field:
    name: str
    ctype: CType
    doc: List[str]


@dataclasses.dataclass
class Struct:
    name: str
    fields: Optional[List[Field]]  # None: opaque
    doc: List[str]
    line: int


@dataclasses.dataclass
class FuncPtr:
    name: str
    ret: CType
    params: List[Param]
    doc: List[str]
    line: int


@dataclasses.dataclass
class Alias:
    name: str
    ctype: CType
    doc: List[str]
    line: int


@dataclasses.dataclass
class Function:
    name: str
    ret: CType
    params: List[Param]
    doc: List[str]
    line: int


Item = Union[Define, Enum, Struct, FuncPtr, Alias, Function]

C_SCALARS = frozenset(
    """int8_t uint8_t int16_t uint16_t int32_t uint32_t int64_t uint64_t size_t ssize_t
    ptrdiff_t intptr_t uintptr_t bool _Bool char float double""".split()
) | {
    "signed char", "unsigned char", "short", "unsigned short", "int", "unsigned int",
    "unsigned", "long", "unsigned long", "long long", "unsigned long long",
}


@dataclasses.dataclass
class Model:
    items: List[Item]

    def of(self, kind):
        return [i for i in self.items if isinstance(i, kind)]

    @property
    def defines(self) -> List[Define]:
        return self.of(Define)

    @property
    def enums(self) -> List[Enum]:
        return self.of(Enum)

    @property
    def structs(self) -> List[Struct]:
        return [s for s in self.of(Struct) if s.fields is not None]

    @property
    def opaques(self) -> List[Struct]:
        return [s for s in self.of(Struct) if s.fields is None]

    @property
    def functions(self) -> List[Function]:
        return self.of(Function)

    @property
    def status(self) -> Enum:
        for e in self.enums:
            if e.name == STATUS_ENUM:
                return e
        raise HeaderError(f"net.h has no enum {STATUS_ENUM}")

    def type_named(self, name: str) -> Optional[Item]:
        for i in self.items:
            if not isinstance(i, (Define, Function)) and i.name == name:
                return i
        return None

    def kind(self, base: str) -> str:
        """scalar | void | struct | opaque | enum | funcptr (aliases resolved)."""
        if base == "void":
            return "void"
        if base in C_SCALARS:
            return "scalar"
        if base.startswith("struct "):
            base = base[len("struct "):]
        t = self.type_named(base)
        if isinstance(t, Struct):
            return "opaque" if t.fields is None else "struct"
        if isinstance(t, Enum):
            return "enum"
        if isinstance(t, FuncPtr):
            return "funcptr"
        if isinstance(t, Alias):
            if t.ctype.ptrs:
                return "pointer"
            return self.kind(t.ctype.base)
        raise HeaderError(f"unknown type {base!r}")

    def to_json(self) -> dict:
        def params(ps):
            return [{"name": p.name, "type": p.ctype.render(), "ctype": p.ctype.to_json()} for p in ps]

        out: Dict[str, list] = {"defines": [], "enums": [], "opaques": [], "structs": [],
                                "callbacks": [], "typedefs": [], "functions": []}
        for i in self.items:
            if isinstance(i, Define):
                out["defines"].append({"name": i.name, "value": i.value, "doc": i.doc})
            elif isinstance(i, Enum):
                out["enums"].append({"name": i.name, "repr": i.repr, "doc": i.doc, "variants": [
                    {"name": v.name, "value": v.value, "doc": v.doc} for v in i.variants]})
            elif isinstance(i, Struct) and i.fields is None:
                out["opaques"].append({"name": i.name, "doc": i.doc})
            elif isinstance(i, Struct):
                out["structs"].append({"name": i.name, "doc": i.doc, "fields": [
                    {"name": f.name, "type": f.ctype.render(), "ctype": f.ctype.to_json(), "doc": f.doc}
                    for f in i.fields or []]})
            elif isinstance(i, FuncPtr):
                out["callbacks"].append({"name": i.name, "doc": i.doc, "returns": i.ret.render(),
                                         "params": params(i.params)})
            elif isinstance(i, Alias):
                out["typedefs"].append({"name": i.name, "type": i.ctype.render(), "doc": i.doc})
            elif isinstance(i, Function):
                out["functions"].append({"name": i.name, "doc": i.doc, "returns": i.ret.render(),
                                         "params": params(i.params)})
        return out


# -- preprocessing and tokens -------------------------------------------------

_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*?)\s*(?://.*|/\*.*\*/)?$")


def preprocess(text: str) -> List[str]:
    """The header as C (not C++) sees it: one entry per source line (inactive
    lines blanked so line numbers stay right); value `#define`s kept."""
    defined = set()
    stack: List[List[bool]] = []  # [this branch active, a branch was taken, parent active]
    active = True
    out: List[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.rstrip().endswith("\\") and line.lstrip().startswith("#"):
            raise HeaderError(f"net.h:{lineno}: multi-line directives are not supported")
        m = _DIRECTIVE.match(line)
        if not m:
            out.append(line if active else "")
            continue
        name, rest = m.group(1), m.group(2)
        out.append("")
        if name in ("ifdef", "ifndef"):
            cond = rest in defined
            if name == "ifndef":
                cond = not cond
            stack.append([active and cond, cond, active])
            active = active and cond
        elif name == "else":
            if not stack:
                raise HeaderError(f"net.h:{lineno}: #else without #if")
            frame = stack[-1]
            frame[0] = frame[2] and not frame[1]
            frame[1] = True
            active = frame[0]
        elif name == "endif":
            if not stack:
                raise HeaderError(f"net.h:{lineno}: #endif without #if")
            active = stack.pop()[2]
        elif not active:
            continue
        elif name == "include":
            continue
        elif name == "define":
            if re.fullmatch(r"\w+", rest):
                defined.add(rest)  # a flag such as the include guard
            else:
                out[-1] = line  # a value define: the tokenizer reads it
        else:
            raise HeaderError(f"net.h:{lineno}: unsupported directive: {line.strip()!r}")
    if stack:
        raise HeaderError("net.h: unterminated #if block")
    return out


@dataclasses.dataclass
class Tok:
    kind: str  # doc | define | id | num | str | p
    value: str
    line: int
    end_line: int = 0
    extra: str = ""  # a define's value text


_TOKEN = re.compile(
    r"""
    (?P<define>^[ \t]*\#[ \t]*define[ \t]+(?P<dname>\w+)[ \t]+(?P<dvalue>[^\n]*?)[ \t]*(?://[^\n]*)?$)
  | (?P<linecomment>//[^\n]*)
  | (?P<blockcomment>/\*.*?\*/)
  | (?P<ws>[ \t\r\n]+)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>0[xX][0-9A-Fa-f]+[uUlL]*|\d+[uUlL]*)
  | (?P<str>"(?:\\.|[^"\\\n])*")
  | (?P<p>\.\.\.|<<|[{}()\[\];,*=:+\-|~])
    """,
    re.M | re.S | re.X,
)


def tokenize(lines: List[str]) -> List[Tok]:
    text = "\n".join(lines)
    toks: List[Tok] = []
    pos = 0
    line = 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise HeaderError(f"net.h:{line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind in ("dname", "dvalue"):
            kind = "define"
        value = m.group(0)
        start_line = line
        line += value.count("\n")
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "define":
            toks.append(Tok("define", m.group("dname"), start_line, start_line, m.group("dvalue")))
        elif kind == "linecomment":
            body = value[2:]
            toks.append(Tok("doc", body[1:] if body.startswith(" ") else body, start_line, start_line))
        elif kind == "blockcomment":
            if value.startswith("/**") and not value.startswith("/**/"):
                for i, l in enumerate(value[3:-2].splitlines()):
                    l = re.sub(r"^\s*\*? ?", "", l)
                    toks.append(Tok("doc", l.rstrip(), start_line + i, start_line + i))
            # other block comments (the file banner, the autogen warning) are not docs
        else:
            toks.append(Tok(kind, value, start_line, line))
    return toks


# -- parsing ------------------------------------------------------------------


def _int_literal(text: str, where: str) -> int:
    t = text.strip()
    while t.startswith("(") and t.endswith(")"):
        t = t[1:-1].strip()
    m = re.fullmatch(r"([-+]?)\s*(0[xX][0-9A-Fa-f]+|\d+)[uUlL]*", t)
    if not m:
        raise HeaderError(f"{where}: unsupported value {text!r} (teach {SCRIPT} about it)")
    value = int(m.group(2), 0)
    return -value if m.group(1) == "-" else value


class Parser:
    def __init__(self, toks: List[Tok]):
        self.toks = toks
        self.items: List[Item] = []

    def parse(self) -> Model:
        doc: List[str] = []
        doc_end = -10
        i = 0
        toks = self.toks
        while i < len(toks):
            t = toks[i]
            if t.kind == "doc":
                if doc and t.line != doc_end + 1:
                    doc = []
                doc.append(t.value)
                doc_end = t.end_line
                i += 1
                continue
            item_doc = doc if doc and t.line == doc_end + 1 else []
            doc = []
            if t.kind == "define":
                self.add(self.define(t, item_doc))
                i += 1
                continue
            j, depth = i, 0
            while j < len(toks):
                v = toks[j].value if toks[j].kind == "p" else None
                if v == "{":
                    depth += 1
                elif v == "}":
                    depth -= 1
                elif v == ";" and depth == 0:
                    break
                j += 1
            if j == len(toks):
                raise HeaderError(f"net.h:{t.line}: declaration without ';'")
            stmt = toks[i:j]
            self.statement(stmt, item_doc)
            i = j + 1
        model = Model(self.items)
        self.validate(model)
        return model

    def add(self, item: Item) -> None:
        if not isinstance(item, Function) and any(
            not isinstance(o, Function) and o.name == item.name and type(o) is type(item)
            for o in self.items
        ):
            raise HeaderError(f"net.h:{item.line}: {item.name} declared twice")
        self.items.append(item)

    def define(self, t: Tok, doc: List[str]) -> Define:
        raw = t.extra.strip()
        if raw.startswith('"'):
            # Plain printable strings only: C and JSON escapes differ.
            if not re.fullmatch(r'"[^"\\]*"', raw) or not raw.isprintable():
                raise HeaderError(f"net.h:{t.line}: unsupported string define {raw!r}")
            return Define(t.value, raw[1:-1], doc, t.line)
        return Define(t.value, _int_literal(raw, f"net.h:{t.line}: #define {t.value}"), doc, t.line)

    # statements

    def statement(self, stmt: List[Tok], doc: List[str]) -> None:
        code = [t for t in stmt if t.kind != "doc"]
        line = stmt[0].line
        first = stmt[0].value
        if first == "typedef":
            self.typedef(stmt[1:], doc, line)
        elif first == "enum":
            self.add(self.enum_body(stmt[1:], doc, line, typedef_form=False))
        elif first == "struct" and any(t.value == "{" for t in stmt if t.kind == "p"):
            name = stmt[1].value
            if stmt[2].value != "{":
                raise HeaderError(f"net.h:{line}: unsupported struct declaration")
            fields = self.fields(stmt[2:], line)
            self.add(Struct(name, fields, doc, line))
        elif first in ("union",):
            raise HeaderError(f"net.h:{line}: unions are not supported")
        else:
            self.add(self.function(code, doc, line))

    def typedef(self, toks: List[Tok], doc: List[str], line: int) -> None:
        vals = [t.value for t in toks]
        if not toks:
            raise HeaderError(f"net.h:{line}: empty typedef")
        if vals[0] == "struct":
            if len(toks) == 3 and toks[1].kind == "id" and toks[2].kind == "id":
                if vals[1] != vals[2]:
                    raise HeaderError(f"net.h:{line}: typedef struct {vals[1]} {vals[2]}: names differ")
                self.add(Struct(vals[2], None, doc, line))
                return
            brace = vals.index("{") if "{" in vals else -1
            if brace in (1, 2) and toks[-1].kind == "id" and vals[-2] == "}":
                fields = self.fields(toks[brace:-1], line)
                self.add(Struct(vals[-1], fields, doc, line))
                return
            raise HeaderError(f"net.h:{line}: unsupported struct typedef")
        if vals[0] == "enum":
            name = vals[-1]
            body = toks[1:-1]
            if body and body[0].kind == "id":
                body = body[1:]
            e = self.enum_body([Tok("id", name, line)] + body, doc, line, typedef_form=True)
            e.repr = None
            self.add(e)
            return
        if vals[0] in ("union",):
            raise HeaderError(f"net.h:{line}: unions are not supported")
        # function pointer: RET ( * NAME ) ( PARAMS )
        if "(" in vals:
            open1 = vals.index("(")
            if vals[open1 + 1] != "*" or vals[open1 + 3] != ")" or vals[open1 + 4] != "(" or vals[-1] != ")":
                raise HeaderError(f"net.h:{line}: unsupported typedef {' '.join(vals)!r}")
            name = vals[open1 + 2]
            ret, _ = self.decl(toks[:open1], named=False, line=line)
            params = self.params(toks[open1 + 5:-1], line)
            self.add(FuncPtr(name, ret, params, doc, line))
            return
        ctype, name = self.decl(toks, named=True, line=line)
        for e in self.enums_named(name):
            if ctype.ptrs or ctype.array is not None or ctype.base not in C_SCALARS:
                raise HeaderError(f"net.h:{line}: enum {name} typedef'd to {ctype.render()}")
            e.repr = ctype.base
            return
        self.add(Alias(name, ctype, doc, line))

    def enums_named(self, name: str) -> List[Enum]:
        return [i for i in self.items if isinstance(i, Enum) and i.name == name]

    def enum_body(self, toks: List[Tok], doc: List[str], line: int, typedef_form: bool) -> Enum:
        if not toks or toks[0].kind != "id" or len(toks) < 3 or toks[1].value != "{" or toks[-1].value != "}":
            raise HeaderError(f"net.h:{line}: unsupported enum declaration")
        name = toks[0].value
        variants: List[Variant] = []
        body = toks[2:-1]
        vdoc: List[str] = []
        entry: List[Tok] = []
        nxt = 0

        def finish(entry: List[Tok], vdoc: List[str]) -> None:
            nonlocal nxt
            if not entry:
                return
            if entry[0].kind != "id":
                raise HeaderError(f"net.h:{entry[0].line}: bad enum variant")
            vname = entry[0].value
            if len(entry) == 1:
                value = nxt
            elif entry[1].value == "=":
                expr = " ".join(t.value for t in entry[2:])
                known = {v.name: v.value for v in variants}
                value = known[expr] if expr in known else _int_literal(expr, f"net.h:{entry[0].line}: {vname}")
            else:
                raise HeaderError(f"net.h:{entry[0].line}: bad enum variant {vname}")
            variants.append(Variant(vname, value, vdoc))
            nxt = value + 1

        for t in body:
            if t.kind == "doc":
                if entry:
                    raise HeaderError(f"net.h:{t.line}: comment inside an enum variant")
                vdoc.append(t.value)
            elif t.kind == "p" and t.value == ",":
                finish(entry, vdoc)
                entry, vdoc = [], []
            else:
                entry.append(t)
        finish(entry, vdoc)
        if not variants:
            raise HeaderError(f"net.h:{line}: enum {name} has no variants")
        return Enum(name, variants, doc, line, typedef_form=typedef_form)

    def fields(self, toks: List[Tok], line: int) -> List[Field]:
        if toks[0].value != "{" or toks[-1].value != "}":
            raise HeaderError(f"net.h:{line}: bad struct body")
        out: List[Field] = []
        fdoc: List[str] = []
        entry: List[Tok] = []
        for t in toks[1:-1]:
            if t.kind == "doc":
                if entry:
                    raise HeaderError(f"net.h:{t.line}: comment inside a field declaration")
                fdoc.append(t.value)
            elif t.kind == "p" and t.value == ";":
                ctype, name = self.decl(entry, named=True, line=entry[0].line if entry else line)
                out.append(Field(name, ctype, fdoc))
                entry, fdoc = [], []
            elif t.kind == "p" and t.value in "{}":
                raise HeaderError(f"net.h:{t.line}: nested struct/union fields are not supported")
            else:
                entry.append(t)
        if entry:
            raise HeaderError(f"net.h:{line}: field without ';'")
        if not out:
            raise HeaderError(f"net.h:{line}: struct without fields")
        return out

    def function(self, toks: List[Tok], doc: List[str], line: int) -> Function:
        vals = [t.value for t in toks]
        if "(" not in vals or vals[-1] != ")":
            raise HeaderError(f"net.h:{line}: not a function prototype: {' '.join(vals)!r}")
        open1 = vals.index("(")
        if open1 < 2 or toks[open1 - 1].kind != "id":
            raise HeaderError(f"net.h:{line}: unsupported declaration {' '.join(vals)!r}")
        ret, name = self.decl(toks[:open1], named=True, line=line)
        if ret.array is not None:
            raise HeaderError(f"net.h:{line}: {name} returns an array")
        params = self.params(toks[open1 + 1:-1], line)
        return Function(name, ret, params, doc, line)

    def params(self, toks: List[Tok], line: int) -> List[Param]:
        if [t.value for t in toks] == ["void"]:
            return []
        if not toks:
            raise HeaderError(f"net.h:{line}: `()` parameter list (write `(void)`)")
        out: List[Param] = []
        entry: List[Tok] = []
        depth = 0
        for t in toks + [Tok("p", ",", line)]:
            if t.kind == "p" and t.value in "([":
                depth += 1
            elif t.kind == "p" and t.value in ")]":
                depth -= 1
            if t.kind == "p" and t.value == "," and depth == 0:
                if [x.value for x in entry] == ["..."]:
                    raise HeaderError(f"net.h:{line}: variadic functions are not supported")
                ctype, name = self.decl(entry, named=True, line=line)
                if ctype.array is not None:
                    raise HeaderError(f"net.h:{line}: array parameter {name}")
                out.append(Param(name, ctype))
                entry = []
            elif t.kind != "doc":
                entry.append(t)
        names = [p.name for p in out]
        if len(set(names)) != len(names):
            raise HeaderError(f"net.h:{line}: duplicate parameter names")
        return out

    def decl(self, toks: List[Tok], named: bool, line: int) -> Tuple[CType, str]:
        """`const uint8_t *const *name[N]` -> (CType, name)."""
        i, n = 0, len(toks)
        const = False
        words: List[str] = []
        while i < n and toks[i].kind == "id":
            v = toks[i].value
            if v == "const":
                const = True
            elif v in ("volatile", "restrict", "static", "extern", "inline", "register"):
                raise HeaderError(f"net.h:{line}: unsupported qualifier {v!r}")
            else:
                words.append(v)
            i += 1
        ptrs: List[bool] = []
        while i < n and toks[i].value == "*":
            i += 1
            pc = False
            if i < n and toks[i].value == "const":
                pc = True
                i += 1
            ptrs.append(pc)
        name = ""
        if named:
            if ptrs:
                if i >= n or toks[i].kind != "id":
                    raise HeaderError(f"net.h:{line}: unnamed declaration {' '.join(t.value for t in toks)!r}")
                name = toks[i].value
                i += 1
            else:
                if len(words) < 2:
                    raise HeaderError(f"net.h:{line}: unnamed declaration {' '.join(t.value for t in toks)!r}")
                name = words.pop()
        array = None
        if i < n and toks[i].value == "[":
            if i + 2 >= n or toks[i + 2].value != "]":
                raise HeaderError(f"net.h:{line}: unsupported array declarator")
            array = _int_literal(toks[i + 1].value, f"net.h:{line}")
            i += 3
        if i != n or not words:
            raise HeaderError(f"net.h:{line}: unsupported declaration {' '.join(t.value for t in toks)!r}")
        base = " ".join(words)
        if len(words) > 1 and base not in C_SCALARS and not (words[0] in ("struct", "enum") and len(words) == 2):
            raise HeaderError(f"net.h:{line}: unsupported type {base!r}")
        return CType(base, const, tuple(ptrs), array), name

    # checks

    def validate(self, model: Model) -> None:
        names: Dict[str, int] = {}
        for i in model.items:
            if isinstance(i, Enum):
                for v in i.variants:
                    if v.name in names:
                        raise HeaderError(f"net.h:{i.line}: {v.name} defined twice")
                    names[v.name] = v.value
            elif isinstance(i, Define):
                if i.name in names:
                    raise HeaderError(f"net.h:{i.line}: {i.name} defined twice")
                names[i.name] = 0
        fnames = [f.name for f in model.functions]
        dup = {n for n in fnames if fnames.count(n) > 1}
        if dup:
            raise HeaderError(f"net.h: functions declared twice: {sorted(dup)}")

        def check(ct: CType, where: str) -> None:
            try:
                k = model.kind(ct.base)
            except HeaderError as exc:
                raise HeaderError(f"net.h: {where}: {exc}") from None
            if k == "void" and not ct.ptrs and where.endswith("field"):
                raise HeaderError(f"net.h: {where}: void field")

        for s in model.structs:
            for f in s.fields or []:
                check(f.ctype, f"{s.name}.{f.name} field")
        for fp in model.of(FuncPtr):
            check(fp.ret, f"{fp.name} result")
            for p in fp.params:
                check(p.ctype, f"{fp.name}({p.name})")
        for a in model.of(Alias):
            check(a.ctype, f"typedef {a.name}")
        for f in model.functions:
            check(f.ret, f"{f.name} result")
            for p in f.params:
                check(p.ctype, f"{f.name}({p.name})")
                if p.ctype.base == "void" and not p.ctype.ptrs:
                    raise HeaderError(f"net.h:{f.line}: {f.name}: void parameter {p.name}")
        st = model.status
        if st.repr is None and not st.typedef_form:
            raise HeaderError(f"net.h: enum {STATUS_ENUM} has no integer typedef")
        codes = [v.value for v in st.variants]
        if len(set(codes)) != len(codes):
            raise HeaderError(f"net.h: two {STATUS_ENUM} codes share a value")
        for v in st.variants:
            if not v.name.startswith("NET_"):
                raise HeaderError(f"net.h: status {v.name} does not start with NET_")
            if v.value < 0 and not v.name.startswith("NET_ERR_"):
                raise HeaderError(f"net.h: negative status {v.name} is not named NET_ERR_*")
            if v.value >= 0 and v.name.startswith("NET_ERR_"):
                raise HeaderError(f"net.h: NET_ERR_ status {v.name} is not negative")
            if not v.doc:
                raise HeaderError(f"net.h: status {v.name} has no doc comment (it is the SDKs' text)")


def parse_header(text: str) -> Model:
    return Parser(tokenize(preprocess(text))).parse()


# -- shared derivations -------------------------------------------------------


def status_words(name: str) -> List[str]:
    for prefix in ("NET_ERR_", "NET_"):
        if name.startswith(prefix):
            return name[len(prefix):].split("_")
    raise HeaderError(f"status {name} does not start with NET_")


def camel(words: Sequence[str]) -> str:
    return "".join(w[:1].upper() + w[1:].lower() for w in words)


def go_camel(words: Sequence[str]) -> str:
    return "".join(w if w in GO_INITIALISMS else w[:1].upper() + w[1:].lower() for w in words)


def first_sentence(doc: Sequence[str]) -> str:
    """The first sentence of a doc comment, as a lower-case phrase for an error
    text: backticks and one trailing parenthetical dropped, no final period."""
    text = " ".join(l.strip() for l in doc).strip()
    m = re.match(r"(.+?[.!?])(?:\s|$)", text)
    s = (m.group(1) if m else text).replace("`", "").rstrip(".!? ").strip()
    s = re.sub(r"\s*\([^()]*\)$", "", s)
    first = s.split(" ", 1)[0]
    if first[:1].isupper() and not any(c.isupper() or c.isdigit() for c in first[1:]):
        s = s[0].lower() + s[1:]
    return s


@dataclasses.dataclass
class ErrorClass:
    name: str
    status: Optional[Variant]  # None: a family base
    parent: str  # "NetError" or the family base
    doc: List[str]
    family: Optional["Family"] = None


@dataclasses.dataclass
class Family:
    word: str  # "REDEX"
    base: str  # "RedexError"
    lowest: int  # -199
    highest: int  # -100
    members: List[Variant]


def families(model: Model) -> List[Family]:
    blocks: Dict[Tuple[int, int], List[Variant]] = {}
    for v in model.status.variants:
        if v.value >= 0:
            continue
        a = -v.value
        key = (a // 100 * 100, 100) if a >= 100 else (a // 10 * 10, 10)
        blocks.setdefault(key, []).append(v)
    out = []
    for (start, size), members in sorted(blocks.items()):
        first_words = {status_words(v.name)[0] for v in members}
        if len(members) >= 2 and len(first_words) == 1:
            word = first_words.pop()
            out.append(Family(word, camel([word]) + "Error", -(start + size - 1), -start, members))
    return out


def error_classes(model: Model) -> List[ErrorClass]:
    """Every error class in definition order (a family base before its members)."""
    fams = families(model)
    by_status = {v.name: f for f in fams for v in f.members}
    known = {v.name for v in model.status.variants}
    for policy, table in (("CLASS_NAME_OVERRIDES", CLASS_NAME_OVERRIDES), ("PYTHON_EXTRA_BASES", PYTHON_EXTRA_BASES)):
        stale = sorted(set(table) - known)
        if stale:
            raise HeaderError(f"{SCRIPT}: {policy} names statuses net.h no longer defines: {stale}")
    out: List[ErrorClass] = []
    emitted = set()
    for v in model.status.variants:
        if v.value >= 0:
            continue
        fam = by_status.get(v.name)
        if fam and fam.base not in emitted:
            emitted.add(fam.base)
            out.append(ErrorClass(fam.base, None, "NetError", [
                f"Base class of the NET_ERR_{fam.word}_* errors; also raised for a code of",
                f"their block ({fam.highest} to {fam.lowest}) that this SDK does not know yet.",
            ], fam))
        name = CLASS_NAME_OVERRIDES.get(v.name) or camel(status_words(v.name)) + "Error"
        out.append(ErrorClass(name, v, fam.base if fam else "NetError", list(v.doc), fam))
    names = [c.name for c in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise HeaderError(f"two statuses (or a status and a family) map to the same class name: {dup} "
                          f"(add an entry to CLASS_NAME_OVERRIDES in {SCRIPT})")
    return out


def banner(comment: str, go: bool = False) -> str:
    if go:
        return f"{comment} Code generated by {SCRIPT} from include/net.h; DO NOT EDIT.\n"
    return (f"{comment} Generated by {SCRIPT} from include/net.h; do not edit.\n"
            f"{comment} Regenerate with `make header` (or `make bindings`).\n")


def js_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def js_value(v: Union[int, str]) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if abs(v) > 2**53 - 1:
        return f"{v}n"
    return str(v)


def ts_value_type(v: Union[int, str]) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if abs(v) > 2**53 - 1:
        return "bigint"
    return str(v)


def doc_block(doc: Sequence[str], indent: str = "") -> str:
    """A /** ... */ block (JS/TS)."""
    lines = [l.replace("*/", "*\\/") for l in doc]
    if not lines:
        return ""
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */\n"
    body = "".join(f"{indent} *{(' ' + l) if l else ''}\n" for l in lines)
    return f"{indent}/**\n{body}{indent} */\n"


# -- Node ---------------------------------------------------------------------


def koffi_direction(model: Model, ct: CType) -> str:
    """The koffi direction of a parameter (see the module docstring)."""
    if not ct.ptrs:
        return ""
    if len(ct.ptrs) >= 2:
        # `T **out`: the pointer it points to is writable, so it is an output
        # (`T *const *` is an input array of pointers).
        return "" if ct.ptrs[-2] else "_Out_ "
    if ct.const:
        return ""
    kind = model.kind(ct.base)
    if kind in ("scalar", "enum", "pointer"):
        return "_Out_ "
    if kind == "struct":
        return "_Inout_ "
    return ""  # an opaque handle, void *, a callback


def koffi_prototype(model: Model, f: Union[Function, FuncPtr], name: Optional[str] = None) -> str:
    params = ", ".join(koffi_direction(model, p.ctype) + p.ctype.render(p.name) for p in f.params) or "void"
    return f"{f.ret.render(name or f.name)}({params})"


def koffi_field_type(model: Model, ct: CType) -> str:
    if ct.array is not None:
        inner = dataclasses.replace(ct, array=None)
        return f"koffi.array({js_str(inner.render())}, {ct.array})"
    return js_str(ct.render())


def emit_node_native(model: Model) -> str:
    out = ["'use strict';\n", banner("//"),
           "//\n// The declarations of include/net.h for koffi: status codes, constants, types\n"
           "// and one prototype per function. lib/native.js loads libnet and binds them.\n\n"]
    out.append("/** Every status code of `net_status_t`, by name. */\nconst STATUS = Object.freeze({\n")
    for v in model.status.variants:
        out.append(doc_block(v.doc, "  "))
        out.append(f"  {v.name}: {v.value},\n")
    out.append("});\n\n")
    out.append("/** Every `#define NET_*` of include/net.h, by name (koffi cannot read macros). */\n"
               "const CONSTANTS = Object.freeze({\n")
    for d in model.defines:
        out.append(doc_block(d.doc, "  "))
        out.append(f"  {d.name}: {js_value(d.value)},\n")
    out.append("});\n\n")
    out.append("/** The values of every other enum of include/net.h, by enum name. */\n"
               "const ENUMS = Object.freeze({\n")
    for e in model.enums:
        if e.name == STATUS_ENUM:
            continue
        out.append(doc_block(e.doc, "  "))
        out.append(f"  {e.name}: Object.freeze({{\n")
        for v in e.variants:
            out.append(doc_block(v.doc, "    "))
            out.append(f"    {v.name}: {v.value},\n")
        out.append("  }),\n")
    out.append("});\n\n")
    out.append(
        "/**\n"
        " * Declares every type of include/net.h with koffi, so that PROTOTYPES read\n"
        " * like the header. Koffi type names are per-thread globals: a type this\n"
        " * thread already declared is reused.\n"
        " */\n"
        "function defineTypes(koffi) {\n"
        "  const named = (name, make) => {\n"
        "    try {\n"
        "      return koffi.type(name);\n"
        "    } catch {\n"
        "      return make();\n"
        "    }\n"
        "  };\n"
    )
    for item in model.items:
        if isinstance(item, Enum):
            base = item.repr or "int"
            out.append(f"  named({js_str(item.name)}, () => koffi.alias({js_str(item.name)}, {js_str(base)}));\n")
        elif isinstance(item, Struct) and item.fields is None:
            out.append(f"  named({js_str(item.name)}, () => koffi.opaque({js_str(item.name)}));\n")
        elif isinstance(item, Struct):
            out.append(f"  named({js_str(item.name)}, () =>\n    koffi.struct({js_str(item.name)}, {{\n")
            for fl in item.fields or []:
                out.append(f"      {fl.name}: {koffi_field_type(model, fl.ctype)},\n")
            out.append("    }),\n  );\n")
        elif isinstance(item, FuncPtr):
            proto = koffi_prototype(model, item, item.name + "_fn")
            out.append(f"  named({js_str(item.name)}, () =>\n"
                       f"    koffi.pointer({js_str(item.name)}, koffi.proto({js_str(proto)})),\n  );\n")
        elif isinstance(item, Alias):
            out.append(f"  named({js_str(item.name)}, () => koffi.alias({js_str(item.name)}, "
                       f"{js_str(item.ctype.render())}));\n")
    out.append("}\n\n")
    out.append(
        "/**\n"
        " * Every function of include/net.h, in header order. Directions: `T **` and\n"
        " * non-const scalar pointers are _Out_ (koffi zero-fills them; a TypedArray is\n"
        " * passed through as is), non-const struct pointers _Inout_ (a `{}` works as a\n"
        " * pure output), the rest are inputs. Handles are bigint pointers; byte inputs\n"
        " * take a Buffer/Uint8Array or a bigint address.\n"
        " */\n"
        "const PROTOTYPES = Object.freeze([\n"
    )
    for f in model.functions:
        out.append(f"  {js_str(koffi_prototype(model, f))},\n")
    out.append("]);\n\nmodule.exports = { STATUS, CONSTANTS, ENUMS, defineTypes, PROTOTYPES };\n")
    return "".join(out)


def emit_node_native_dts(model: Model) -> str:
    out = [banner("//"), "\n"]
    out.append("/** The names of `net_status_t`. */\nexport type StatusName =\n")
    out.append("".join(f"  | '{v.name}'\n" for v in model.status.variants).rstrip("\n") + ";\n\n")
    out.append("/** The names of the `#define NET_*` constants. */\nexport type ConstantName =\n")
    out.append("".join(f"  | '{d.name}'\n" for d in model.defines).rstrip("\n") + ";\n\n")
    out.append("/** Every status code of `net_status_t`, by name. */\nexport declare const STATUS: {\n")
    for v in model.status.variants:
        out.append(f"  readonly {v.name}: {v.value};\n")
    out.append("};\n\n/** Every `#define NET_*` of include/net.h, by name. */\nexport declare const CONSTANTS: {\n")
    for d in model.defines:
        out.append(f"  readonly {d.name}: {ts_value_type(d.value)};\n")
    out.append("};\n\n/** The values of every other enum, by enum name. */\nexport declare const ENUMS: {\n")
    for e in model.enums:
        if e.name == STATUS_ENUM:
            continue
        members = " ".join(f"readonly {v.name}: {v.value};" for v in e.variants)
        out.append(f"  readonly {e.name}: {{ {members} }};\n")
    out.append("};\n\n/** Declares the types of include/net.h with the given koffi module. */\n"
               "export declare function defineTypes(koffi: unknown): void;\n\n"
               "/** Every function of include/net.h as a koffi prototype. */\n"
               "export declare const PROTOTYPES: readonly string[];\n")
    return "".join(out)


def emit_node_errors(model: Model) -> str:
    classes = error_classes(model)
    out = ["'use strict';\n", banner("//"),
           "//\n// One NetError subclass per NET_ERR_* status of include/net.h (a family of codes\n"
           "// shares a base class), the status -> class map, and the family code ranges.\n"
           "// NetError itself (lib/net-error.js) and errorFor (lib/errors.js) are written by hand.\n\n",
           "const { NetError } = require('./net-error');\n\n"]
    for c in classes:
        doc = list(c.doc)
        if c.status is not None:
            doc += ["", f"Status `{c.status.name}` ({c.status.value})."]
        out.append(doc_block(doc))
        out.append(f"class {c.name} extends {c.parent} {{}}\n")
    out.append("\n/** The class of each error status. */\nconst CLASS_BY_STATUS = new Map([\n")
    for c in classes:
        if c.status is not None:
            out.append(f"  [{c.status.value}, {c.name}], // {c.status.name}\n")
    out.append("]);\n\n/** Families: a code in [lowest, highest] this SDK does not know gets `Class`. */\n"
               "const ERROR_FAMILIES = Object.freeze([\n")
    for f in families(model):
        out.append(f"  Object.freeze({{ lowest: {f.lowest}, highest: {f.highest}, Class: {f.base} }}),\n")
    out.append("]);\n\n/** Every generated error class, by name. */\nconst ERROR_CLASSES = Object.freeze({\n")
    for c in classes:
        out.append(f"  {c.name},\n")
    out.append("});\n\nmodule.exports = { ...ERROR_CLASSES, ERROR_CLASSES, CLASS_BY_STATUS, ERROR_FAMILIES };\n")
    return "".join(out)


def emit_node_errors_dts(model: Model) -> str:
    classes = error_classes(model)
    out = [banner("//"), "\n", "import { NetError } from '../index';\n\n"]
    for c in classes:
        doc = list(c.doc)
        if c.status is not None:
            doc += ["", f"Status `{c.status.name}` ({c.status.value})."]
        out.append(doc_block(doc))
        out.append(f"export declare class {c.name} extends {c.parent} {{}}\n")
    return "".join(out)


# -- Python -------------------------------------------------------------------


def c_decl_line(model: Model, item: Item) -> List[str]:
    if isinstance(item, Define):
        return [f"#define {item.name} {item.value}"] if isinstance(item.value, int) else []
    if isinstance(item, Enum):
        body = "".join(f"\n    {v.name} = {v.value}," for v in item.variants)
        if item.typedef_form:
            return [f"typedef enum {{{body}\n}} {item.name};"]
        lines = [f"enum {item.name} {{{body}\n}};"]
        if item.repr:
            lines.append(f"typedef {item.repr} {item.name};")
        return lines
    if isinstance(item, Struct) and item.fields is None:
        return [f"typedef struct {item.name} {item.name};"]
    if isinstance(item, Struct):
        fields = "".join(f"\n    {f.ctype.render(f.name)};" for f in item.fields or [])
        return [f"typedef struct {{{fields}\n}} {item.name};"]
    if isinstance(item, FuncPtr):
        params = ", ".join(p.ctype.render(p.name) for p in item.params) or "void"
        return [f"typedef {item.ret.render('(*' + item.name + ')')}({params});"]
    if isinstance(item, Alias):
        return [f"typedef {item.ctype.render(item.name)};"]
    if isinstance(item, Function):
        params = ", ".join(p.ctype.render(p.name) for p in item.params) or "void"
        return [f"{item.ret.render(item.name)}({params});"]
    raise AssertionError(item)


def emit_python_cdef(model: Model) -> str:
    lines: List[str] = []
    for item in model.items:
        lines.extend(c_decl_line(model, item))
    cdef = "\n".join(lines) + "\n"
    if "'''" in cdef or "\\" in cdef:
        raise HeaderError("the cdef cannot be written as a raw triple-quoted string")
    return (banner("#") + '"""The cffi cdef of include/net.h: every define, enum, type and function\n'
            '(used by netmesh._ffi in ABI mode)."""\n\n'
            f"CDEF = r'''\n{cdef}'''\n")


def py_doc(lines: Sequence[str], indent: str = "    ") -> str:
    body = [l.replace('"""', '\\"\\"\\"') for l in lines]
    while body and not body[-1]:
        body.pop()
    if not body:
        return f'{indent}"""(undocumented)"""\n'
    if len(body) == 1:
        return f'{indent}"""{body[0]}"""\n'
    text = "\n".join((indent + l) if l else "" for l in body[1:])
    return f'{indent}"""{body[0]}\n{text}\n{indent}"""\n'


def emit_python_status(model: Model) -> str:
    out = [banner("#"), '"""``net_status_t``: every status code of include/net.h."""\n\n',
           "from __future__ import annotations\n\nimport enum\n\n__all__ = [\"Status\"]\n\n\n",
           "class Status(enum.IntEnum):\n", '    """Every ``net_status_t`` code of the C ABI."""\n\n']
    for v in model.status.variants:
        for l in v.doc:
            out.append(f"    #: {l}\n".replace("#: \n", "#:\n"))
        out.append(f"    {v.name[len('NET_'):]} = {v.value}\n")
    return "".join(out)


def python_hierarchy(classes: List[ErrorClass]) -> str:
    children: Dict[str, List[ErrorClass]] = {}
    for c in classes:
        children.setdefault(c.parent, []).append(c)
    lines = ["NetError"]

    def walk(parent: str, prefix: str) -> None:
        kids = children.get(parent, [])
        for i, c in enumerate(kids):
            last = i == len(kids) - 1
            extra = PYTHON_EXTRA_BASES.get(c.status.name, ()) if c.status else ()
            label = c.name + (f" (also {', '.join(extra)})" if extra else "")
            code = f"  {c.status.name}" if c.status else f"  NET_ERR_{c.family.word}_*" if c.family else ""
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label}{code}")
            walk(c.name, prefix + ("    " if last else "│   "))

    walk("NetError", "")
    return "\n".join(lines)


def emit_python_errors(model: Model) -> str:
    classes = error_classes(model)
    defined = {"NetError"}
    out = [banner("#"),
           '"""The exception class of every NET_ERR_* status of include/net.h.\n\n'
           "A family of codes (NET_ERR_REDEX_*, ...) shares a base class. ``ERROR_CLASSES``\n"
           "maps each status to its class and ``ERROR_FAMILIES`` each family's code range\n"
           "to its base. :class:`NetError` and ``error_for_status`` are written by hand\n"
           '(``netmesh._neterror``, ``netmesh.errors``)."""\n\n'
           "from __future__ import annotations\n\n"
           "from typing import Dict, Tuple, Type\n\n"
           "from ._neterror import NetError\n\n"]
    names = [c.name for c in classes]
    out.append("__all__ = [\n" + "".join(f'    "{n}",\n' for n in names)
               + '    "ERROR_CLASSES",\n    "ERROR_FAMILIES",\n    "HIERARCHY",\n]\n')
    for c in classes:
        extra = PYTHON_EXTRA_BASES.get(c.status.name, ()) if c.status else ()
        for b in extra:
            if not hasattr(builtins, b) and b not in defined:
                raise HeaderError(f"{SCRIPT}: {c.name}'s extra base {b} is not defined before it")
        doc = list(c.doc)
        if c.status is not None:
            note = f"Status ``{c.status.name}`` ({c.status.value})."
            if extra:
                note += " Also a " + " and a ".join(f"``{b}``" for b in extra) + "."
            doc += ["", note]
        bases = ", ".join((c.parent,) + tuple(extra))
        out.append(f"\n\nclass {c.name}({bases}):\n")
        out.append(py_doc(doc))
        defined.add(c.name)
    out.append("\n\n#: The class raised for each error status.\n"
               "ERROR_CLASSES: Dict[int, Type[NetError]] = {\n")
    for c in classes:
        if c.status is not None:
            out.append(f"    {c.status.value}: {c.name},  # {c.status.name}\n")
    out.append("}\n\n#: ``(lowest, highest, base)``: the class of a code of a family this SDK does not know yet.\n"
               "ERROR_FAMILIES: Tuple[Tuple[int, int, Type[NetError]], ...] = (\n")
    for f in families(model):
        out.append(f"    ({f.lowest}, {f.highest}, {f.base}),\n")
    out.append(")\n\n#: The class tree, for documentation.\nHIERARCHY = \"\"\"\\\n")
    out.append(python_hierarchy(classes) + "\n\"\"\"\n")
    return "".join(out)


# -- Go -----------------------------------------------------------------------


def go_status_name(v: Variant) -> str:
    return "Status" + go_camel(status_words(v.name))


def go_comment(lines: Sequence[str], indent: str = "") -> str:
    return "".join(f"{indent}//{(' ' + l) if l else ''}\n" for l in lines)


def emit_go(model: Model) -> str:
    st = model.status.variants
    names = [go_status_name(v) for v in st]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise HeaderError(f"two statuses map to the same Go name: {dup}")
    out = [banner("//", go=True), "\n", "package netmesh\n\n",
           "/*\n#include <net.h>\n*/\nimport \"C\"\n\n",
           "// Every status code of net.h.\nconst (\n"]
    for v, n in zip(st, names):
        out.append(go_comment([f"{n} is {v.name} ({v.value}):"] + list(v.doc), "\t"))
        out.append(f"\t{n} Status = C.{v.name}\n")
    out.append(")\n\n")
    errs = [(("Err" + n[len("Status"):]), n) for v, n in zip(st, names) if v.value < 0]
    width = max(len(e) for e, _ in errs)
    out.append("// Sentinel errors, one per error status, for errors.Is:\n//\n"
               "//\tif errors.Is(err, netmesh.ErrTokenExpired) { ... }\n//\n"
               "// They are constants of type Status; every *Error unwraps to its Status.\nconst (\n")
    for e, n in errs:
        out.append(f"\t{e.ljust(width)} = {n}\n")
    out.append(")\n\n")
    out.append("// statusInfo describes a status: its C name and a short text (the first\n"
               "// sentence of its doc comment in net.h).\n"
               "type statusInfo struct {\n"
               "\tstatus Status\n"
               "\tname   string\n"
               "\ttext   string\n"
               "}\n\n"
               "var statusTable = [...]statusInfo{\n")
    for v, n in zip(st, names):
        out.append(f"\t{{{n}, {json.dumps(v.name)}, {json.dumps(first_sentence(v.doc), ensure_ascii=False)}}},\n")
    out.append("}\n\n"
               "// statusInfos is statusTable by status.\n"
               "var statusInfos = func() map[Status]statusInfo {\n"
               "\tm := make(map[Status]statusInfo, len(statusTable))\n"
               "\tfor _, info := range statusTable {\n"
               "\t\tm[info.status] = info\n"
               "\t}\n"
               "\treturn m\n"
               "}()\n")
    return "".join(out)


# -- outputs ------------------------------------------------------------------

OUTPUTS: Dict[str, Callable[[Model], str]] = {
    "sdk-node/lib/native.gen.js": emit_node_native,
    "sdk-node/lib/native.gen.d.ts": emit_node_native_dts,
    "sdk-node/lib/errors.gen.js": emit_node_errors,
    "sdk-node/lib/errors.gen.d.ts": emit_node_errors_dts,
    "sdk-python/netmesh/_cdef.py": emit_python_cdef,
    "sdk-python/netmesh/_status_gen.py": emit_python_status,
    "sdk-python/netmesh/_errors_gen.py": emit_python_errors,
    "sdk-go/netmesh/errors_gen.go": emit_go,
}


def generate(model: Model) -> Dict[str, str]:
    return {path: emit(model) for path, emit in OUTPUTS.items()}


def write(files: Dict[str, str], root: str) -> None:
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def check(files: Dict[str, str], root: str, fresh_dir: Optional[str]) -> int:
    tmp = fresh_dir or tempfile.mkdtemp(prefix="net-bindings.")
    try:
        write(files, tmp)
        stale = []
        for rel in files:
            with open(os.path.join(tmp, rel), encoding="utf-8") as f:
                fresh = f.read()
            try:
                with open(os.path.join(root, rel), encoding="utf-8") as f:
                    committed = f.read()
            except FileNotFoundError:
                committed = None
            if committed == fresh:
                continue
            stale.append(rel)
            if committed is None:
                print(f"--- {rel} is missing", file=sys.stderr)
                continue
            diff = list(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True),
                                             f"{rel} (committed)", f"{rel} (from include/net.h)"))
            sys.stderr.writelines(diff[:200])
            if len(diff) > 200:
                print(f"... ({len(diff) - 200} more diff lines)", file=sys.stderr)
        if stale:
            print(f"\nSDK bindings are stale: {', '.join(stale)} "
                  f"{'is' if len(stale) == 1 else 'are'} not what {SCRIPT} generates from\n"
                  "include/net.h. Run 'make header' (or 'make bindings') and commit the result;\n"
                  "never edit a generated file by hand.", file=sys.stderr)
            return 1
        print(f"SDK bindings: {len(files)} generated files match include/net.h")
        return 0
    finally:
        if not fresh_dir:
            shutil.rmtree(tmp, ignore_errors=True)


# -- verification against a C compiler ----------------------------------------


def probe_source(model: Model, header_name: str = "net.h") -> str:
    out = [f'#include "{header_name}"\n#include <stddef.h>\n',
           "#define SAME(a, b, what) _Static_assert(__builtin_types_compatible_p(a, b), what)\n"]
    n = 0
    for d in model.defines:
        if isinstance(d.value, int):
            lit = f"{d.value}LL" if d.value < 0 else f"{d.value}ULL"
            out.append(f'_Static_assert(({d.name}) == {lit}, "#define {d.name}");\n')
        else:
            out.append(f'_Static_assert(sizeof({d.name}) == {len(d.value.encode()) + 1}, "#define {d.name}");\n')
    for e in model.enums:
        for v in e.variants:
            out.append(f'_Static_assert({v.name} == {v.value}, "{e.name} {v.name}");\n')
        if e.repr:
            out.append(f'SAME({e.name}, {e.repr}, "typedef {e.name}");\n')
    for s in model.opaques:
        out.append(f'SAME({s.name}, struct {s.name}, "opaque {s.name}");\n')
    for s in model.structs:
        n += 1
        mirror = f"probe_mirror_{n}"
        out.append(f"struct {mirror} {{ " + " ".join(f.ctype.render(f.name) + ";" for f in s.fields or []) + " };\n")
        out.append(f'_Static_assert(sizeof(struct {mirror}) == sizeof({s.name}), "size of {s.name}");\n')
        for f in s.fields or []:
            out.append(f'_Static_assert(offsetof(struct {mirror}, {f.name}) == offsetof({s.name}, {f.name}), '
                       f'"offset of {s.name}.{f.name}");\n')
            out.append(f'SAME(__typeof__((({s.name} *)0)->{f.name}), {f.ctype.render()}, "type of {s.name}.{f.name}");\n')
    for fp in model.of(FuncPtr):
        params = ", ".join(p.ctype.render() for p in fp.params) or "void"
        out.append(f'SAME({fp.name}, {fp.ret.render("(*)")}({params}), "typedef {fp.name}");\n')
    for a in model.of(Alias):
        out.append(f'SAME({a.name}, {a.ctype.render()}, "typedef {a.name}");\n')
    for f in model.functions:
        params = ", ".join(p.ctype.render() for p in f.params) or "void"
        out.append(f'SAME(__typeof__(&{f.name}), {f.ret.render("(*)")}({params}), "prototype of {f.name}");\n')
    return "".join(out)


def verify(model: Model, header_path: str, quiet: bool = False) -> int:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        print("gen-sdk-bindings: no C compiler: model not verified", file=sys.stderr)
        return 0
    tmp = tempfile.mkdtemp(prefix="net-bindings-probe.")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w", encoding="utf-8") as f:
            f.write(probe_source(model, os.path.basename(header_path)))
        inc = os.path.dirname(os.path.abspath(header_path))
        aux = os.path.join(tmp, "aux.txt")
        cmd = [cc, "-std=gnu11", "-Wall", "-Werror", "-I", inc, "-c", src, "-o", os.path.join(tmp, "probe.o")]
        gcc = "gcc" in os.path.basename(cc) or _is_gcc(cc)
        if gcc:
            cmd[1:1] = ["-aux-info", aux]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            if not quiet:
                sys.stderr.write(r.stderr)
                print("gen-sdk-bindings: the parsed model of net.h disagrees with the C compiler (above)",
                      file=sys.stderr)
            return 1
        if gcc:
            with open(aux, encoding="utf-8", errors="replace") as f:
                declared = set()
                hdr = os.path.basename(header_path)
                for line in f:
                    if f"/* {os.path.join(inc, hdr)}:" in line or f"{hdr}:" in line.split("*/")[0]:
                        m = re.search(r"\b(\w+) \(", line)
                        if m:
                            declared.add(m.group(1))
            parsed = {fn.name for fn in model.functions}
            if declared != parsed:
                print(f"gen-sdk-bindings: functions the compiler sees but the parser missed: "
                      f"{sorted(declared - parsed)}; parsed but not seen: {sorted(parsed - declared)}",
                      file=sys.stderr)
                return 1
        print(f"SDK bindings: the C compiler agrees with the parsed model ({len(model.functions)} functions, "
              f"{len(model.structs)} structs, {len(model.opaques)} handles, "
              f"{sum(len(e.variants) for e in model.enums)} enum values, {len(model.defines)} defines)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _is_gcc(cc: str) -> bool:
    try:
        r = subprocess.run([cc, "--version"], capture_output=True, text=True)
    except OSError:
        return False
    return "Free Software Foundation" in r.stdout and "clang" not in r.stdout.lower()


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=ROOT, help="repository root (default: this script's)")
    ap.add_argument("--header", help="the header (default: <root>/include/net.h)")
    ap.add_argument("--out", help="write the generated files under this directory instead of --root "
                                  "(with --check: keep the fresh copies there)")
    ap.add_argument("--check", action="store_true",
                    help="compare the committed files with a fresh generation; exit 1 on any difference")
    ap.add_argument("--verify", action="store_true", help="only check the parsed model with a C compiler")
    ap.add_argument("--dump-model", action="store_true", help="print the parsed header as JSON")
    ap.add_argument("--list", action="store_true", help="print the generated files' paths")
    args = ap.parse_args(argv)
    header = args.header or os.path.join(args.root, HEADER)
    if args.list:
        print("\n".join(OUTPUTS))
        return 0
    try:
        with open(header, encoding="utf-8") as f:
            model = parse_header(f.read())
        if args.dump_model:
            json.dump(model.to_json(), sys.stdout, indent=2)
            print()
            return 0
        if args.verify:
            return verify(model, header)
        files = generate(model)
    except HeaderError as exc:
        print(f"gen-sdk-bindings: {exc}", file=sys.stderr)
        return 2
    if args.check:
        status = verify(model, header)
        return check(files, args.root, args.out) or status
    write(files, args.out or args.root)
    print(f"SDK bindings: wrote {len(files)} files from {os.path.relpath(header, args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
