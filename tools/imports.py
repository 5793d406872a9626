"""The project's own import graph, read from the source (no import is executed): which `scoring` modules each stage
script needs, and which sub-package each module belongs to. The tests use it to keep dvc.yaml's deps and the
package's layers honest; `python -m tools.imports` prints each stage's modules for dvc.yaml.

Layers, bottom to top: settings, ray_runtime, contract, features, catalog, data, synthetic, model, serving,
monitoring, reporting. A module imports only from its own layer or the ones below.
"""
from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "scoring"
LAYERS = ("settings", "ray_runtime", "contract", "features", "catalog", "data", "synthetic", "model", "serving",
          "monitoring", "reporting")


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file of a dotted module of ours (a module or a package's __init__), None when it is not ours."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_names(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` of this file names, submodules included (`from scoring.model
    import training` names scoring.model and scoring.model.training)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@cache
def direct_imports(module: str, root: Path = ROOT) -> frozenset[str]:
    """The modules of our package this module imports (at any place in the file, functions included)."""
    path = module_file(module, root)
    if path is None:
        return frozenset()
    ours = {name for name in imported_names(path) if name.split(".")[0] == PACKAGE and module_file(name, root)}
    return frozenset(ours - {module})


def module_of(path: Path, root: Path = ROOT) -> str:
    relative = path.resolve().relative_to(root).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def closure(module: str, root: Path = ROOT) -> set[str]:
    """Every module of ours `module` needs, directly or through others (itself included)."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(direct_imports(current, root))
    return seen


def package_files(modules: set[str], root: Path = ROOT) -> set[str]:
    """The source files of these modules that belong to the package (not the stage scripts), as repo paths."""
    files = {module_file(m, root) for m in modules if m.split(".")[0] == PACKAGE}
    return {path.relative_to(root).as_posix() for path in files if path is not None}


def layer(module: str) -> int:
    """The layer index of a module of the package (`scoring.model.training` -> model's)."""
    parts = module.split(".")
    if len(parts) < 2:
        raise ValueError(f"{module} is the package itself, not a module of a layer")
    if parts[1] not in LAYERS:
        raise ValueError(f"{module}: {parts[1]!r} is not a layer of {LAYERS} (tools/imports.py)")
    return LAYERS.index(parts[1])


def package_modules(root: Path = ROOT) -> list[str]:
    return sorted(module_of(path, root) for path in (root / PACKAGE).rglob("*.py")
                  if module_of(path, root) != PACKAGE)


def stage_modules(stage: str, root: Path = ROOT) -> set[str]:
    return package_files(closure(f"stages.{stage}", root), root)


def main() -> None:
    stages = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")
    for stage in stages:
        sys.stdout.write(f"{stage}:\n" + "".join(f"  - {f}\n" for f in sorted(stage_modules(stage))))


if __name__ == "__main__":
    main()
