"""Package-level checks: the public API, docstrings, and the layer rules of DESIGN.md."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import statesync

SRC = Path(statesync.__file__).parent
CORE = {
    "actions",
    "canonical",
    "composition",
    "conflict",
    "delta",
    "diffing",
    "draft",
    "fanout",
    "errors",
    "game",
    "hashing",
    "history",
    "inversion",
    "jsonpatch",
    "ops",
    "reasons",
    "records",
    "replay",
    "rng",
    "snapshot",
    "storage",
    "synchronizer",
    "value",
    "views",
    "wire",
    "games",
}
# A module may import only from its own layer or the layers listed for it.
ALLOWED = {
    "core": {"core"},
    "protocol": {"core", "protocol"},
    "store": {"core", "store"},
    # DESIGN.md draws sim -> protocol, core; the simulator also drives the real server (its
    # connections and table actors), a store and the SDK's Backoff, on a virtual loop.
    "sim": {"core", "protocol", "store", "server", "client", "sim"},
    "server": {"core", "protocol", "server"},
    "client": {"core", "protocol", "client"},
    # testing.chaos runs SDK clients in child processes.
    "testing": {"core", "protocol", "store", "client", "testing"},
    "cli": {"core", "protocol", "store", "server", "client", "sim", "cli"},
}
IO_MODULES = {"asyncio", "socket", "time", "random", "logging", "threading", "sqlite3", "os"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else ""
    if head in CORE or head in ("", "__init__"):
        return "core"
    return head


def modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages([str(SRC)], prefix="statesync."))


def test_all_is_sorted_and_complete() -> None:
    names = statesync.__all__
    # isort order (what ruff's RUF022 keeps): CONSTANTS, then Classes, then functions.
    assert names == sorted(set(names), key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(statesync, name), name
    public = {n for n in vars(statesync) if not n.startswith("_") and n not in ("annotations",)}
    submodules = {m.split(".")[1] for m in modules()}
    assert public - set(names) - submodules == set()


@pytest.mark.parametrize("name", [n for n in statesync.__all__ if not n.startswith("_")])
def test_public_names_have_docstrings(name: str) -> None:
    obj = getattr(statesync, name)
    if callable(obj) and not isinstance(obj, type(statesync)):
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


@pytest.mark.parametrize("module", modules())
def test_layer_rules(module: str) -> None:
    path = SRC.joinpath(*module.split(".")[1:])
    file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(file.read_text())
    mine = layer_of(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("statesync."):
                other = layer_of(target)
                assert other in ALLOWED[mine], f"{module} ({mine}) imports {target} ({other})"
            elif mine in ("core", "protocol"):
                top = target.split(".")[0]
                assert top not in IO_MODULES, f"{module} is {mine} but imports {target}"


@pytest.mark.parametrize("module", modules())
def test_doctests(module: str) -> None:
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(mod, module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module}"
