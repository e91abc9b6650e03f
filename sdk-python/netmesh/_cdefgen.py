"""Turns ``include/net.h`` into a cffi ``cdef`` string.

Used at wheel build time by ``setup.py`` (which writes the result into the
wheel as ``netmesh/_cdef.py``) and, for development from a source checkout
only, by ``netmesh._ffi`` when that generated module is absent.

The header is evaluated as C, not C++: ``#include`` lines are dropped, the
include guard and ``#ifdef __cplusplus`` blocks are resolved by a tiny
preprocessor, and ``#define NAME <integer>`` lines are kept (cffi's cdef
accepts them and exposes them as ``lib.NAME``). Any other directive is an
error, so a header change that this SDK does not understand fails the build
loudly instead of producing a subtly wrong binding.

This module must stay importable on its own (no package-relative imports):
``setup.py`` loads it by path before the package is installed.
"""

from __future__ import annotations

import re
from typing import List, Set

__all__ = ["header_to_cdef", "INCLUDE_GUARD"]

INCLUDE_GUARD = "NET_H"

_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*?)\s*(?://.*|/\*.*\*/)?$")
_INT_DEFINE = re.compile(r"^(\w+)\s+(-?(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*)$")


def header_to_cdef(header: str) -> str:
    """Returns the cdef text for the given contents of ``net.h``."""
    defined: Set[str] = set()
    # Each entry: (this branch active, any branch taken, parent active).
    stack: List[List[bool]] = []
    active = True
    out: List[str] = []
    for lineno, line in enumerate(header.splitlines(), start=1):
        m = _DIRECTIVE.match(line)
        if not m:
            if active:
                out.append(line)
            continue
        name, rest = m.group(1), m.group(2)
        if name in ("ifdef", "ifndef"):
            cond = rest in defined
            if name == "ifndef":
                cond = not cond
            stack.append([active and cond, cond, active])
            active = active and cond
        elif name == "else":
            if not stack:
                raise ValueError(f"net.h:{lineno}: #else without #if")
            frame = stack[-1]
            frame[0] = frame[2] and not frame[1]
            frame[1] = True
            active = frame[0]
        elif name == "endif":
            if not stack:
                raise ValueError(f"net.h:{lineno}: #endif without #if")
            active = stack.pop()[2]
        elif not active:
            continue
        elif name == "include":
            continue
        elif name == "define":
            d = _INT_DEFINE.match(rest)
            if d:
                value = re.sub(r"[uUlL]+$", "", d.group(2))
                out.append(f"#define {d.group(1)} {value}")
            elif re.fullmatch(r"\w+", rest):
                defined.add(rest)  # a flag such as the include guard
            else:
                raise ValueError(
                    f"net.h:{lineno}: unsupported #define for cffi: {line.strip()!r}"
                )
        else:
            raise ValueError(f"net.h:{lineno}: unsupported directive: {line.strip()!r}")
    if stack:
        raise ValueError("net.h: unterminated #if block")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover - debugging aid
    import sys

    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(header_to_cdef(f.read()))
