"""The code a function runs, as a hash: its source and everything in ``rlhf_core`` it reaches.

Stage versions include this hash, so editing a loss changes the version of every stage that
calls it, through any chain of calls, and of no other stage. Nothing is bumped by hand.

The walk is static (``ast``, nothing is executed): from a function it follows the names the
function uses to their definitions, in its own module or in an ``rlhf_core`` module it imports,
and hashes the source of every definition reached plus each touched module's top-level
statements (constants, imports). A plug-in looked up by name at run time (``rlhf_core.registry``)
is not reached: a stage adds the hash of each entry its task's config names (``Stage(uses=...)``).

    code_hash(sft_model)   # 16 hex digits
    forget("rlhf_core.train.pro")   # that file changed in this process: read it again

What is read of a module (its parse, scope and each definition's references) is kept per module,
so after an edit only that module is read again and the walks, cheap set operations, are redone.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

ROOT_PACKAGE = "rlhf_core"
Definition = tuple[str, str]  # (module, top-level name)
_PER_MODULE: list[dict[tuple, Any]] = []  # the caches forget() clears by module
_HASHES: dict[Definition, tuple[str, set[str]]] = {}  # start -> its hash and the modules it read


def _per_module(fn: Callable) -> Callable:
    """Cache ``fn(module, *args)``; ``forget(module)`` drops that module's entries."""
    cache: dict[tuple, Any] = {}
    _PER_MODULE.append(cache)

    @wraps(fn)
    def cached(module: str, *args: Any) -> Any:
        key = (module, *args)
        if key not in cache:
            cache[key] = fn(module, *args)
        return cache[key]

    return cached


def forget(module: str) -> None:
    """Drop what was read of ``module``, whose file changed in this process; every hash is redone."""
    for memo in _PER_MODULE:
        for key in [k for k in memo if k[0] == module]:
            del memo[key]
    for start in [s for s, (_, modules) in _HASHES.items() if module in modules]:
        del _HASHES[start]


@_per_module
def _module(name: str) -> tuple[ast.Module, str] | None:
    """The parsed source of an ``rlhf_core`` module (None for packages without one, or others)."""
    if name != ROOT_PACKAGE and not name.startswith(ROOT_PACKAGE + "."):
        return None
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    source = Path(spec.origin).read_text()
    return ast.parse(source), source


@cache
def _is_module(name: str) -> bool:
    if not name.startswith(ROOT_PACKAGE + "."):
        return False  # only our own modules are walked (and finding others would import them)
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module of a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    origin = importlib.util.find_spec(module).origin or ""
    package = module if origin.endswith("__init__.py") else module.rpartition(".")[0]
    parts = package.split(".")
    parts = parts[: len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


@_per_module
def _scope(module: str) -> tuple[dict[str, ast.AST], dict[str, Definition | str], list[ast.stmt]]:
    """A module's top-level definitions, imported names and other statements."""
    parsed = _module(module)
    if parsed is None:
        return {}, {}, []
    tree, _ = parsed
    defs: dict[str, ast.AST] = {}
    imports: dict[str, Definition | str] = {}  # local name -> (module, name) or a module name
    rest: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
            continue
        rest.append(node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:  # ``import a.b as c``; a bare ``import a.b`` is followed as a whole module
                    imports[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                imports[alias.asname or alias.name] = sub if _is_module(sub) else (source, alias.name)
    return defs, imports, rest


def _locals(node: ast.AST) -> set[str]:
    """Names a function (or class) binds itself: arguments and assignments inside it."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return set()
    names = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub is not node:
            names.add(sub.name)
    return names


def _references(module: str, node: ast.AST) -> set[Definition | str]:
    """What a definition uses: local definitions, imported names and modules (also lazy imports)."""
    defs, imports, _ = _scope(module)
    found: set[Definition | str] = set()
    local = _locals(node)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in local:
            continue  # a variable of the function that shadows a module-level name
        if isinstance(sub, ast.Name):
            if sub.id in defs:
                found.add((module, sub.id))
            elif sub.id in imports:
                found.add(imports[sub.id])
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            target = imports.get(sub.value.id)
            if isinstance(target, str):  # ``module.name``
                found.add((target, sub.attr) if not _is_module(f"{target}.{sub.attr}") else f"{target}.{sub.attr}")
        elif isinstance(sub, ast.Import):
            found |= {alias.name for alias in sub.names}
        elif isinstance(sub, ast.ImportFrom):
            source = _absolute(module, sub)
            for alias in sub.names:
                name = f"{source}.{alias.name}"
                found.add(name if _is_module(name) else (source, alias.name))
    return found


def _walk(start: Definition) -> tuple[set[Definition], set[str], set[str]]:
    """Every definition reachable from ``start``, every module they touch, and every module read
    on the way (a re-export is read, not touched)."""
    seen: set[Definition] = set()
    modules: set[str] = set()
    read: set[str] = set()
    whole: set[str] = set()
    todo: list[Definition | str] = [start]

    def touch(module: str) -> None:  # a module's top-level statements come with it
        if module not in modules:
            modules.add(module)
            todo.extend(_uses(module, None))

    while todo:
        item = todo.pop()
        if isinstance(item, str):  # a whole module is used (``import x``)
            if item not in whole and _module(item) is not None:
                whole.add(item)
                touch(item)
                todo.extend((item, name) for name in _scope(item)[0])
            continue
        if item in seen:
            continue
        module, name = item
        read.add(module)
        defs, imports, _ = _scope(module)
        if name not in defs:
            if name in imports:  # re-exported
                todo.append(imports[name])
            elif _module(module) is not None:
                touch(module)  # a constant: part of the module's top-level statements
            continue
        seen.add(item)
        touch(module)
        todo.extend(_uses(module, name))
    return seen, modules, read | modules


@_per_module
def _uses(module: str, name: str | None) -> frozenset[Definition | str]:
    """What the definition ``name`` uses; for None, what the module's top-level statements use (constants
    may use other definitions; imported names count only where a definition uses them)."""
    defs, _, rest = _scope(module)
    if name is not None:
        return frozenset(_references(module, defs[name]))
    return frozenset(
        ref for stmt in rest if not isinstance(stmt, (ast.Import, ast.ImportFrom)) for ref in _references(module, stmt)
    )


@_per_module
def _lines(module: str) -> list[str]:
    return [line + "\n" for line in _module(module)[1].split("\n")]  # ast counts lines by "\n"


def _segment(module: str, node: ast.AST) -> str:
    """The source of ``node``, as ``ast.get_source_segment`` gives it, without re-splitting the
    whole file on every call (that made loading the definitions take seconds)."""
    lines, first, last = _lines(module), node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset :].decode()
    return head + "".join(lines[first + 1 : last]) + lines[last].encode()[: node.end_col_offset].decode()


def _hash_from(start: Definition) -> str:
    if start not in _HASHES:
        _HASHES[start] = _digest(*_walk(start))
    return _HASHES[start][0]


def _digest(seen: set[Definition], modules: set[str], read: set[str]) -> tuple[str, set[str]]:
    digest = hashlib.sha256()
    for module in sorted(modules):
        defs, _, rest = _scope(module)
        digest.update(module.encode())
        for stmt in rest:  # constants and imports of every touched module
            digest.update(_segment(module, stmt).encode())
        for name in sorted(n for m, n in seen if m == module):
            digest.update(name.encode() + _segment(module, defs[name]).encode())
    return digest.hexdigest()[:16], read


def code_hash(fn) -> str:
    """Hash of the source ``fn`` runs within ``rlhf_core`` (see the module docstring)."""
    fn = inspect.unwrap(fn)
    return _hash_from((fn.__module__, fn.__name__))
