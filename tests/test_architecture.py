"""The layout's rules, read off the source: imports run one way, no cycles, and the scripts
beside the package use its public names only."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "glassjax"
# Each layer may import itself and the layers before it, never a later one.
LAYERS = ("core", "data", "systems", "probes", "analysis", "report", "bench", "cli")
# Layers that sit side by side: neither may import the other.
PEERS = {("probes", "analysis"), ("analysis", "probes")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every glassjax import in ``path``, absolute names."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("glassjax")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("glassjax"):
            out.append((node.module, node.lineno))
            out += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path):
    here = _layer(_module_name(path))
    if here is None:
        return  # glassjax/__init__.py gathers the public names
    for module, line in _imports(path):
        there = _layer(module)
        if there is None or there == here:
            continue
        assert (here, there) not in PEERS, f"{path.name}:{line} imports {module}: {here} and {there} are peers"
        assert LAYERS.index(there) < LAYERS.index(here), f"{path.name}:{line}: {here} imports {module} ({there})"


def test_no_import_cycles_between_modules():
    """Module-level imports only (imports inside functions run late and cannot cycle at import time)."""
    graph = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        edges = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("glassjax"):
                edges.add(node.module)
                edges |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("glassjax")}
        graph[_module_name(path)] = edges
    modules = set(graph)
    # A package's __init__ re-exporting its own modules is not a cycle; edges into a package are edges to it.
    edges = {m: {e for e in deps if e in modules and e != m and not e.startswith(m + ".")} for m, deps in graph.items()}
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for dep in edges[module]:
            if state.get(dep) == "open":
                cycle = trail[trail.index(dep):] + [dep]
                if not all(c.startswith(dep) or dep.startswith(c) for c in cycle):
                    pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            elif dep not in state:
                visit(dep, trail + [dep])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_use_public_names(path):
    for module, line in _imports(path):
        parts = module.split(".")
        assert "cli" not in parts[1:2], f"{path.name}:{line} imports the command line ({module})"
        assert not any(p.startswith("_") for p in parts[1:]), f"{path.name}:{line} imports a private name ({module})"
