"""The package's layers: every import in memebot/ (module level or inside a function) points down or sideways.

data -> features/models -> strategy -> risk -> exec -> engine (backtest) -> live -> service (db, api) -> ops
-> commands, with the domain types, settings, logging and metric maths (core, config, obs, metrics) beneath them all.
The map is README.md's "Layout" section; this test is what keeps it true.
"""

import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parent.parent / "memebot"

# lowest first; a module belongs to the layer of its longest matching prefix
LAYERS = [
    ("base", ["memebot.core", "memebot.config", "memebot.obs", "memebot.metrics"]),
    ("data", ["memebot.data"]),
    ("models", ["memebot.features", "memebot.splits", "memebot.models"]),
    ("strategy", ["memebot.strategy"]),
    ("risk", ["memebot.risk"]),
    ("exec", ["memebot.exec"]),
    ("engine", ["memebot.backtest"]),
    ("testing", ["memebot.testing"]),
    ("live", ["memebot.live"]),
    ("service", ["memebot.db", "memebot.api"]),
    ("ops", ["memebot.ops", "memebot.docs", "memebot.alerts", "memebot.backup"]),
    ("commands", ["memebot.cli", "memebot.commands"]),
]


def layer_of(module: str) -> int | None:
    "Index of `module`'s layer in LAYERS (None for the package root and _modidx)."
    best, idx = "", None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, idx = p, i
    return idx


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    "(line, absolute module) for every memebot import in the file, relative ones resolved."
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_in(src: str, mod: str, is_package: bool) -> list[tuple[int, str]]:
    "(line, absolute module) for every memebot import in `src`, the source of module `mod`."
    package = mod.split(".") if is_package else mod.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "memebot"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "memebot":
                continue
            if target == "memebot" or layer_of(target) is None:  # `from memebot import ops`: the names are modules
                out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, target))
    return out


MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "_modidx.py")


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in MODULES if module_name(p) != "memebot" and layer_of(module_name(p)) is None]
    assert missing == [], f"modules with no layer in tests/test_layers.py LAYERS: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down(path):
    mod = module_name(path)
    here = layer_of(mod)
    if here is None:
        return
    up = [
        f"{mod}:{line} imports {target} ({LAYERS[layer_of(target)][0]} is above {LAYERS[here][0]})"
        for line, target in imports_of(path)
        if layer_of(target) is not None and layer_of(target) > here
    ]
    assert up == [], "\n".join(up)


def test_the_walker_sees_an_upward_import():
    "The check itself can fail: a lazy import inside a function that runs back up the layers is caught."
    src = (
        "import numpy\ndef f():\n    from memebot.commands.paper import build_feed\n    from ..live import"
        " TradingNode\n"
    )
    found = [t for _, t in imports_in(src, "memebot.risk.safety", False)]
    assert found == ["memebot.commands.paper", "memebot.live"]
    assert all(layer_of(t) > layer_of("memebot.risk") for t in found)
