"""requirements-serve.lock: the packages of the scoring service's image, pinned, and nothing else.

    python -m tools.serve_lock           # rewrite requirements-serve.lock
    python -m tools.serve_lock --check   # exit 1 when the file is not what this would write

The serving set is pyproject.toml's `[project] dependencies` (the service's own needs; the pipeline, the app and the
development tools are optional groups). pip's resolver expands it, constrained by requirements.lock, the one source
of versions: every package it picks must be pinned there, at the same version, or this fails. The lines keep
requirements.lock's spelling and order. pip asks the package index for metadata (no install: `--dry-run`).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
SERVE_LOCK = ROOT / "requirements-serve.lock"
PYPROJECT = ROOT / "pyproject.toml"
HEADER = """\
# The scoring service's packages (deploy/Dockerfile installs this file, then the project with --no-deps): the
# closure of pyproject.toml's [project] dependencies, every pin taken from requirements.lock (a subset of it, same
# versions). Made by pip's resolver, do not edit by hand:
#   pip install --dry-run --ignore-installed --report - -c requirements.lock <[project] dependencies>
# Remake it after a change to either file with `.venv/bin/python -m tools.serve_lock` (`--check` only compares);
# tests/repo/test_image.py fails when it falls behind.
"""


def canonical(name: str) -> str:
    """A distribution's normalised name (PEP 503): `great_expectations` and `Great-Expectations` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, tuple[str, str]]:
    """canonical name -> (name as the file spells it, version) of a `name==version` lock file, in file order."""
    pins: dict[str, tuple[str, str]] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = (part.strip() for part in line.split("=="))
            pins[canonical(name)] = (name, version)
    return pins


def serving_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def resolve(requirements: list[str], constraints: Path = LOCK) -> dict[str, str]:
    """canonical name -> version of every package pip would install for `requirements` under `constraints`."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--disable-pip-version-check", "--report", str(report), "-c", str(constraints),
                        *requirements], check=True)
        installs = json.loads(report.read_text())["install"]
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}


def render(resolved: dict[str, str], lock: dict[str, tuple[str, str]]) -> str:
    """The serving lock's text; ValueError when a resolved package is not pinned in requirements.lock as resolved."""
    unpinned = sorted(f"{name}=={version}" for name, version in resolved.items()
                      if name not in lock or lock[name][1] != version)
    if unpinned:
        raise ValueError(f"resolved outside requirements.lock (add them there first): {unpinned}")
    return HEADER + "".join(f"{spelled}=={version}\n" for name, (spelled, version) in lock.items()
                            if name in resolved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when the file differs")
    ns = parser.parse_args(argv)
    text = render(resolve(serving_requirements()), read_pins(LOCK))
    if ns.check:
        same = SERVE_LOCK.exists() and SERVE_LOCK.read_text() == text
        print(f"{SERVE_LOCK.name} is {'up to date' if same else 'behind: run python -m tools.serve_lock'}")
        return 0 if same else 1
    SERVE_LOCK.write_text(text)
    print(f"{SERVE_LOCK.name}: {text.count('==')} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
