"""params.yaml, read into typed settings. Paths live once in params.yaml (`paths:`) and nowhere else."""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from scoring.model.cost import CostParams
from scoring.synthetic.generator import DriftParams, GeneratorParams

PARAMS_FILE = Path("params.yaml")


@dataclass(frozen=True)
class Paths:
    raw: Path
    synthetic: Path
    prepared: Path
    features: Path
    models: Path
    reports: Path


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the stages from the repository root (where dvc.yaml is)")
    return yaml.safe_load(path.read_text())


def paths_from(params: dict[str, Any]) -> Paths:
    return Paths(**{f.name: Path(params["paths"][f.name]) for f in fields(Paths)})


def dvc_outputs(pipeline: dict[str, Any], params: dict[str, Any]) -> dict[str, list[str]]:
    """Stage name -> what it writes (metrics first, then outs), `${paths.x}` resolved from params.yaml."""
    def resolve(path: str) -> str:
        return re.sub(r"\$\{paths\.(\w+)\}", lambda m: str(params["paths"][m.group(1)]), path).rstrip("/")

    return {name: [resolve(next(iter(entry)) if isinstance(entry, dict) else entry)
                   for entry in stage.get("metrics", []) + stage.get("outs", [])]
            for name, stage in pipeline["stages"].items()}


def generator_params(params: dict[str, Any]) -> GeneratorParams:
    synthetic = dict(params["data"]["synthetic"])
    drift = DriftParams(**synthetic.pop("drift", {}))
    return GeneratorParams(**synthetic, drift=drift)


def configure_logging() -> None:
    """Logging for command-line entry points (stages, tools); quiet the chatty libraries."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("great_expectations", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cost_params(params: dict[str, Any]) -> CostParams:
    return CostParams(fn=float(params["cost"]["fn"]), fp=float(params["cost"]["fp"]))
