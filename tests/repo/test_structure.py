"""The house's structure, checked from the source: dvc.yaml declares every module each stage needs (so DVC never skips
a stage whose code changed), the package's layers only import downwards and without cycles, sub-packages' __init__
files hold no code, and no module of ours is imported inside a function without a stated reason."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tools import imports

from ..conftest import REPO

PIPELINE = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
LAZY_ALLOWED = {("serve/run.py", "serve.app")}
"""Imports of ours kept inside a function, each with its reason at the import: serve.run is imported by the manifest
renderer, which CI runs with PyYAML alone, and serve.app needs Ray."""


def declared_modules(stage: str) -> set[str]:
    return {dep for dep in PIPELINE[stage]["deps"] if isinstance(dep, str) and dep.endswith(".py")
            and dep.startswith(f"{imports.PACKAGE}/")}


def needed_modules(stage: str) -> set[str]:
    return {path for path in imports.stage_modules(stage) if not path.endswith("__init__.py")}


@pytest.mark.parametrize("stage", sorted(PIPELINE))
def test_each_stage_declares_exactly_the_modules_it_imports(stage):
    script = f"stages/{stage}.py"
    assert PIPELINE[stage]["cmd"] == f"stages/python -m stages.{stage}", "a stage runs its own module (stages/python)"
    assert script in PIPELINE[stage]["deps"], f"dvc.yaml {stage}: the stage's script {script} is not a dep"
    missing, extra = needed_modules(stage) - declared_modules(stage), declared_modules(stage) - needed_modules(stage)
    assert not missing and not extra, (
        f"dvc.yaml stage {stage}: missing deps {sorted(missing)}, deps it does not import {sorted(extra)}; "
        "`python -m tools.imports` prints each stage's modules")


def test_every_module_of_the_package_belongs_to_a_layer_and_imports_only_downwards():
    wrong = []
    for module in imports.package_modules():
        for imported in imports.direct_imports(module):
            if imported != imports.PACKAGE and imports.layer(imported) > imports.layer(module):
                wrong.append(f"{module} -> {imported}")
    assert not wrong, f"imports from a lower layer to a higher one ({imports.LAYERS}): {wrong}"


def test_the_settings_import_nothing_of_ours():
    assert imports.direct_imports("scoring.settings") == frozenset()


def test_no_import_cycle():
    graph = {module: {m for m in imports.direct_imports(module) if m != imports.PACKAGE}
             for module in imports.package_modules()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph.get(module, ())):
            if state.get(nxt) == 1:
                pytest.fail(f"import cycle: {' -> '.join([*path, module, nxt])}")
            if nxt not in state:
                visit(nxt, [*path, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_package_init_files_hold_a_docstring_only():
    for init in (REPO / imports.PACKAGE).rglob("__init__.py"):
        body = ast.parse(init.read_text()).body
        assert all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body), init


def lazy_project_imports(path: Path) -> set[tuple[str, str]]:
    found = set()
    for function in ast.walk(ast.parse(path.read_text())):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                         [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                found |= {(path.relative_to(REPO).as_posix(), name) for name in names
                          if name.split(".")[0] in ("scoring", "serve", "stages", "app", "tools")}
    return found


def test_no_module_of_ours_is_imported_inside_a_function():
    found = set()
    for folder in ("scoring", "stages", "serve", "app", "tools", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            found |= lazy_project_imports(path)
    assert found <= LAZY_ALLOWED, f"imports of ours inside functions: {sorted(found - LAZY_ALLOWED)}"
