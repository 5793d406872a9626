"""What the deck shows: the pipeline's reports, read through the catalog, and the settings that produced them."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from scoring.settings import Paths, Settings, dvc_outputs


@dataclass(frozen=True)
class Reports:
    """What the deck shows: the pipeline's reports and the settings that produced them."""

    settings: Settings
    root: Path
    metrics: dict[str, Any]
    train: dict[str, Any]
    threshold: dict[str, Any]
    validation: dict[str, Any]
    local: dict[str, Any]
    fairness: pd.DataFrame
    importance: pd.Series
    calibration: pd.DataFrame
    drift: dict[str, Any]
    performance: dict[str, Any] | None
    """The performance stage's verdict on realised outcomes (`reports/performance.json`), when it has run."""
    serving: dict[str, Any] | None
    """bench/serve.py's figures (`reports/serving.json`), when the benchmark has been run; never made up."""
    stages: dict[str, str]
    """dvc.yaml's stages, in the order written there, each with the first thing it writes."""
    ci_jobs: list[str]
    """The jobs of the CI workflow (empty where the project has none)."""

    @property
    def paths(self) -> Paths:
        """The catalog, relative to the project root."""
        return self.settings.paths

    def path(self, relative: Path) -> Path:
        return existing(self.root / relative)

    def source(self, relative: Path) -> str:
        """How a footer names a report: its path from the project root."""
        return relative.as_posix()

CI_WORKFLOW = Path(".github/workflows/ci.yml")


def existing(path: Path) -> Path:
    if not path.exists():
        fix = ("run it from the project's root (or give --params there)" if path.name == "dvc.yaml"
               else "build the pipeline outputs first (`dvc repro`), then rerun")
        raise FileNotFoundError(f"{path} not found: {fix}")
    return path


def load_reports(settings: Settings, root: Path = Path(".")) -> Reports:
    """Read every report the deck uses, from paths.reports under `root`."""
    paths = settings.paths

    def read_json(path: Path) -> dict[str, Any]:
        return json.loads(existing(root / path).read_text())

    importance = pd.read_csv(existing(root / paths.shap_importance), index_col="feature")
    return Reports(
        settings=settings, root=root, metrics=read_json(paths.metrics_json), train=read_json(paths.train_report),
        threshold=read_json(paths.threshold_json), validation=read_json(paths.validation_json),
        local=read_json(paths.local_explanations),
        fairness=pd.read_csv(existing(root / paths.fairness_csv)),
        importance=importance["mean_abs_shap"],
        calibration=pd.read_csv(existing(root / paths.calibration_csv)),
        drift=read_json(paths.drift_json),
        performance=(json.loads((root / paths.performance_json).read_text())
                     if (root / paths.performance_json).exists() else None),
        serving=json.loads((root / paths.serving_json).read_text()) if (root / paths.serving_json).exists() else None,
        stages={name: (written[0] if written else "") for name, written in
                dvc_outputs(yaml.safe_load(existing(root / "dvc.yaml").read_text()), settings.paths).items()},
        ci_jobs=list(yaml.safe_load((root / CI_WORKFLOW).read_text())["jobs"]) if (root / CI_WORKFLOW).exists() else [],
    )
