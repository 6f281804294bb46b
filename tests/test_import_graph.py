"""The package imports only downward: no import cycles among privguard's modules or its packages.

Every import statement counts, wherever it is (module level, inside a function,
under ``TYPE_CHECKING``): a cycle hidden behind a lazy import is still a cycle
in the layering. The root package's ``__init__`` (the public facade) is left
out; it imports from the layers below by design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import privguard

ROOT = Path(privguard.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py") if "_standard" not in p.parts}


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[: len(up) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != "privguard" and t != name:
                    graph[name].add(t)
    graph.pop("privguard", None)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _layer(module: str) -> str:
    """The layer a module belongs to: its first package under privguard (or the module itself)."""
    return ".".join(module.split(".")[:2])


def test_the_graph_is_read() -> None:
    graph = _edges(_modules())
    assert "privguard.pseudonym.forms" in graph["privguard.pseudonym.vault"]
    assert "privguard.dicomio" in graph["privguard.deidentifier"]


def test_no_module_import_cycles() -> None:
    assert _cycles(_edges(_modules())) == []


def test_no_cycles_between_layers() -> None:
    graph = _edges(_modules())
    layers: dict[str, set[str]] = {}
    for src, dsts in graph.items():
        layers.setdefault(_layer(src), set()).update(_layer(d) for d in dsts if _layer(d) != _layer(src))
    assert _cycles(layers) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_header_path_imports_no_heavy_stage() -> None:
    """``--ocr off`` start-up: no classifier, OCR, torch or Ray is loaded until a file needs them."""
    import subprocess
    import sys

    code = (
        "import sys, privguard.deidentifier, privguard.dicomio, privguard.dicom.verify\n"
        "heavy = ('presidio', 'spacy', 'torch', 'ray', 'easyocr', 'cv2',\n"
        "         'privguard.text', 'privguard.pixels.stage')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
