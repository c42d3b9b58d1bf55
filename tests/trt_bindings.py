"""What a TensorRT release binds in Python, read from its pybind11 source (``python/src/infer/*.cpp``).

``py::class_<Cpp, Base...>(scope, "Name")`` / ``py::enum_<Cpp>(scope, "Name")`` declare a class; the
``.def("x")``, ``.def_property*("x")``, ``.def_read*("x")``, ``.def_static("x")`` and ``.value("X")``
chained on it (or on the variable it is stored in) bind its members; ``.export_values()`` copies an
enum's values into the enclosing scope (``trt.ILogger.WARNING``); C++ bases that are bound classes
are inherited (``trt.Logger.WARNING`` through ``ILogger``). ``m.attr("x")`` binds a module attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_TOKEN = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|.', re.DOTALL)
_DECL = re.compile(r"py::(class_|enum_)\s*<")
_MEMBER = re.compile(r'\.\s*(def|def_property|def_property_readonly|def_readwrite|def_readonly|def_static|value)'
                     r'\s*\(\s*"(\w+)"')
_VAR_CHAIN = re.compile(r"(?:^|[\s{};])(\w+)\s*\.\s*(?:def|value)\w*\s*\(")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')
_DECL_ARGS = re.compile(r'\s*(\w+)?\s*([({])\s*(\w+)\s*,\s*"(\w+)"')
_MODULE_ATTR = re.compile(r'\bm\s*\.\s*attr\s*\(\s*"(\w+)"')


@dataclass
class Bindings:
    version: str
    classes: dict[str, set[str]] = field(default_factory=dict)  # python name -> members (inherited included)
    module: set[str] = field(default_factory=set)

    def has(self, name: str) -> bool:
        head, _, member = name.partition(".")
        if not member:
            return head in self.classes or head in self.module
        return member in self.classes.get(head, set())


def _statements(text: str) -> list[str]:
    """Top-level statements (split at ``;`` outside parentheses), comments dropped, strings kept."""
    out, depth, current = [], 0, []
    for token in _TOKEN.findall(text):
        if token.startswith(("//", "/*")):
            continue
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token == ";" and depth == 0:
            out.append("".join(current))
            current = []
            continue
        current.append(token)
    return out


def _close(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes the one opened before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced {open_}{close} in {text[:80]!r}")


def _split_args(inner: str) -> list[str]:
    args, depth, current = [], 0, []
    for ch in inner:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    args.append("".join(current).strip())
    return args


def _chain(text: str) -> tuple[list[str], bool]:
    """Member names chained at depth 0 of ``text`` and whether ``.export_values()`` is among them."""
    names, depth, i, exported = [], 0, 0, False
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _STRING.match(text, i).end()
            continue
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == "." and depth == 0:
            if m := _MEMBER.match(text, i):
                names.append(m.group(2))
            elif re.match(r"\.\s*export_values\s*\(", text[i:]):
                exported = True
        i += 1
    return names, exported


def parse(folder: Path) -> Bindings:
    """The names bound by the ``*.cpp`` files in ``folder`` (one release)."""
    cpp_name: dict[str, str] = {}  # C++ type -> python name
    members: dict[str, set[str]] = {}
    bases: dict[str, list[str]] = {}
    variables: dict[str, str] = {}  # C++ variable holding a class_ -> python name
    module: set[str] = set()
    pending_exports: list[tuple[str, str]] = []  # (enum, scope)
    for path in sorted(Path(folder).glob("*.cpp")):
        for stmt in _statements(path.read_text(errors="replace")):
            module.update(_MODULE_ATTR.findall(stmt))
            decl = _DECL.search(stmt)
            if decl:
                end = _close(stmt, decl.end(), "<", ">")
                targs = _split_args(stmt[decl.end():end - 1])
                m = _DECL_ARGS.match(stmt, end)
                if not m:
                    continue
                var, bracket, scope, name = m.groups()
                cpp_name[targs[0]] = name
                bases.setdefault(name, []).extend(targs[1:])
                if var:
                    variables[var] = name
                rest = stmt[_close(stmt, m.end(), *("()" if bracket == "(" else "{}")):]
                names, exported = _chain(rest)
                members.setdefault(name, set()).update(names)
                if scope == "m":
                    module.add(name)
                else:
                    members.setdefault(variables.get(scope, scope), set()).add(name)
                if exported:
                    pending_exports.append((name, "m" if scope == "m" else variables.get(scope, scope)))
                continue
            for m in _VAR_CHAIN.finditer(stmt):
                if m.group(1) in variables:
                    names, _ = _chain(stmt[m.start(1) + len(m.group(1)):])
                    members.setdefault(variables[m.group(1)], set()).update(names)
                    break
    for enum, scope in pending_exports:
        target = module if scope == "m" else members.setdefault(scope, set())
        target.update(members.get(enum, set()))

    def closure(name: str, seen: frozenset = frozenset()) -> set[str]:
        found = set(members.get(name, set()))
        for base in bases.get(name, []):
            parent = cpp_name.get(base)
            if parent and parent not in seen and parent != name:
                found |= closure(parent, seen | {name})
        return found

    return Bindings(Path(folder).name, {name: closure(name) for name in members}, module)
