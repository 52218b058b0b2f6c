"""The package's import graph: stages stand side by side on shared layers, never on each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "genre_cli"

#: Modules that run one stage: each reads its inputs through genre_cli.formats.
STAGES = {"fetch", "segment", "featurize", "table", "train", "evaluate", "predict"}
#: Modules that compose stages (the command line, `genre run`, `genre cv`, and `genre serve`'s web service).
COMPOSERS = {"cli", "pipeline", "cv", "__main__", "serve.app"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def _imports(path: Path) -> set[str]:
    """Every genre_cli module ``path`` imports, at any depth (function-level imports included),
    as names relative to the package (``formats.features``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                mod = ".".join([*base, node.module] if node.module else base)
                names = [f"genre_cli.{mod}".rstrip(".")]
            else:
                names = [node.module or ""]
            names += [f"{names[0]}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            if n == "genre_cli" or n.startswith("genre_cli."):
                out.add(n.removeprefix("genre_cli").lstrip(".") or "__init__")
    return out


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _is_stage(name: str) -> bool:
    return name in STAGES


def test_no_stage_imports_another_stage():
    bad = []
    for mod, deps in _graph().items():
        if _is_stage(mod):
            bad += [f"{mod} imports {d}" for d in deps if _is_stage(d) and d != mod]
    assert bad == [], bad


def test_only_the_command_line_and_pipeline_import_stages():
    bad = []
    for mod, deps in _graph().items():
        if mod in STAGES or mod in COMPOSERS:
            continue
        bad += [f"{mod} imports stage {d}" for d in deps if _is_stage(d)]
    assert bad == [], bad


def test_stages_read_artifacts_through_formats():
    """Every stage that reads or writes an artifact kind goes through genre_cli.formats."""
    graph = _graph()
    for stage in STAGES - {"predict"}:  # predict reads models through inference, itself on formats.model
        assert any(d == "formats" or d.startswith("formats.") for d in graph[stage]), stage
    assert any(d.startswith("formats") for d in graph["inference"])


def test_the_graph_is_what_the_test_thinks_it_is():
    """Guard against a parser that sees nothing: known edges are found."""
    graph = _graph()
    assert "formats.features" in graph["train"] and "training.loop" in graph["train"]
    assert {"fetch", "segment", "featurize", "train", "evaluate"} <= graph["pipeline"]
    assert "features.kind" in graph["inference"]
