"""The library's layers (:data:`ptmbench.LAYERS`): imports point down, never up, and never form a cycle,
counting imports inside functions; each subpackage says its role in one line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ptmbench

SRC = Path(ptmbench.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(path: Path, known: set[str]):
    """(imported ptmbench module, line, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    in_function.add(id(sub))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import ptmbench.core.tasks.x` -> the module part
                target = target.rpartition(".")[0]
            if target.startswith("ptmbench"):
                yield target, node.lineno, id(node) in in_function


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _graph():
    modules = _modules()
    known = set(modules)
    return modules, {m: list(_imports(p, known)) for m, p in modules.items()}


def test_every_subpackage_is_a_declared_layer_with_a_one_line_role():
    packages = sorted(p.parent.name for p in SRC.glob("*/__init__.py"))
    assert packages == sorted(ptmbench.LAYERS), "declare every subpackage once in ptmbench.LAYERS"
    loose = sorted(p.name for p in SRC.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules outside the layers: {loose}; move them into the subpackage of their role"
    for name in ptmbench.LAYERS:
        doc = ast.get_docstring(ast.parse((SRC / name / "__init__.py").read_text()))
        assert doc and "\n" not in doc.strip(), f"ptmbench.{name}: its __init__ docstring is its role in one line"


def test_imports_point_down_the_layers():
    _, graph = _graph()
    order = {name: i for i, name in enumerate(ptmbench.LAYERS)}
    upward = [f"{m}:{line} imports {target} ({_layer(target)} is above {_layer(m)})"
              for m, imports in graph.items() for target, line, _ in imports
              if _layer(m) in order and _layer(target) in order and order[_layer(target)] > order[_layer(m)]]
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_no_import_cycle_counting_imports_inside_functions():
    _, graph = _graph()
    edges = {m: sorted({t for t, _, _ in imports if t != m and t != "ptmbench"}) for m, imports in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in edges.get(m, ()):
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t):], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_an_import_of_the_library_inside_a_function_says_why():
    """A function-level import is only for keeping a heavy dependency (torch, transformers) out of a
    light job, and a comment on it (or the line above) says so."""
    modules, graph = _graph()
    silent: list[str] = []
    for m, imports in graph.items():
        lines = modules[m].read_text().splitlines()
        for target, line, inside in imports:
            if inside and not any("#" in lines[i] for i in (line - 2, line - 1) if i >= 0):
                silent.append(f"{modules[m].relative_to(SRC.parent)}:{line} imports {target} inside a function")
    assert not silent, "function-level imports without a comment saying why:\n" + "\n".join(dict.fromkeys(silent))


def test_the_checks_see_cycles_and_upward_imports(tmp_path, monkeypatch):
    """The walker finds imports inside functions, relative imports and the module part of a dotted name."""
    pkg = tmp_path / "ptmbench"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "core" / "b.py").write_text("import ptmbench.core.a\nfrom ptmbench.cli import main\n")
    (pkg / "cli").mkdir()
    (pkg / "cli" / "__init__.py").write_text("")
    (pkg / "cli" / "main.py").write_text("")
    monkeypatch.setattr(ptmbench, "__file__", str(pkg / "__init__.py"))
    monkeypatch.setitem(globals(), "SRC", pkg)
    modules, graph = _graph()
    assert ("ptmbench.core.b", 2, True) in graph["ptmbench.core.a"]
    assert ("ptmbench.core.a", 1, False) in graph["ptmbench.core.b"]
    assert ("ptmbench.cli.main", 2, False) in graph["ptmbench.core.b"]
    with pytest.raises(AssertionError, match="ptmbench.core.b:2 imports ptmbench.cli.main"):
        test_imports_point_down_the_layers()
    with pytest.raises(AssertionError, match="core/a.py:2 imports ptmbench.core.b inside a function"):
        test_an_import_of_the_library_inside_a_function_says_why()
    with pytest.raises(AssertionError, match="ptmbench.core.a -> ptmbench.core.b -> ptmbench.core.a"):
        test_no_import_cycle_counting_imports_inside_functions()
