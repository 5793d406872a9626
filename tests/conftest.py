"""Shared fixtures, each written once: the project's settings, a small generated data set, a tiny fitted model and a
project folder that serves it (no `dvc repro`), one Great Expectations context, the real rows in ../shared."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from scoring import features
from scoring.data.io import read_prepared
from scoring.model import training
from scoring.settings import Settings, TrainSettings, load_settings
from scoring.synthetic.dataset import generate_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HOME_CREDIT_SHARED", REPO.parent / "shared" / "data" / "home-credit"))

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

SETTINGS: Settings = load_settings(REPO / "params.yaml")
"""The project's own settings (params.yaml): tests change what they need with `dataclasses.replace`."""
SMALL = replace(SETTINGS.data.synthetic, n_applicants=6_000, n_test=1_500, seed=7, chunk_size=4_000)
TINY_THRESHOLD = 0.09


def train_settings(**changes) -> TrainSettings:
    """params.yaml's train section with empty grids (each model's defaults: fast) and these changes."""
    return replace(SETTINGS.train, **{"grids": {}, **changes})


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"real Kaggle rows not available ({path})")
    return path


def fit_model(name: str, X: pd.DataFrame, y: np.ndarray, **model_params) -> training.CalibratedScorer:
    """One candidate pipeline fitted on all rows, calibrated (isotonic) on its own scores: a model in the
    pipeline's format, made in seconds."""
    pipeline = training.build_pipeline(name, *training.split_columns(X), train_settings(models=(name,)),
                                       float(y.mean()))
    pipeline.set_params(**{f"model__{key}": value for key, value in model_params.items()}).fit(X, y)
    calibrator = IsotonicRegression(out_of_bounds="clip").fit(pipeline.predict_proba(X)[:, 1], y)
    return training.scorer_of(pipeline, calibrator, name, X)


@dataclass(frozen=True)
class SmallData:
    tables: dict[str, pd.DataFrame]
    history: pd.DataFrame
    X: pd.DataFrame          # features of the labelled applicants
    y: np.ndarray


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven generated tables (6,000 + 1,500 applicants, two chunks) and the oracle, as Parquet."""
    out = tmp_path_factory.mktemp("synthetic") / "tables"
    generate_dataset(SMALL, out, progress=False)
    return out


@pytest.fixture(scope="session")
def small_data(small_dataset: Path) -> SmallData:
    tables = read_prepared(small_dataset)
    history = features.history_features(tables)
    apps = tables["application_train"]
    return SmallData(tables, history, features.build_features(apps, history), apps["TARGET"].to_numpy())


@pytest.fixture(scope="session")
def tiny_model(small_data: SmallData) -> training.CalibratedScorer:
    """XGBoost, 60 trees of depth 3 (SHAP from the tables of scoring/serving/treeshap.py)."""
    return fit_model("xgboost", small_data.X, small_data.y, n_estimators=60, max_depth=3)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory: pytest.TempPathFactory, small_data: SmallData, tiny_model) -> Path:
    """A project folder holding what the service reads, as the pipeline writes it (the catalog's paths): params.yaml,
    the tiny model, its threshold and metrics, the history lookup, the prepared test applicants. No `dvc repro`."""
    root = tmp_path_factory.mktemp("tiny_project")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    paths = load_settings(root / "params.yaml").under(root).paths
    for folder in (paths.prepared, paths.features, paths.models, paths.reports):
        folder.mkdir(parents=True, exist_ok=True)
    small_data.tables["application_test"].to_parquet(paths.prepared_table("application_test"), index=False)
    small_data.history.to_parquet(paths.history)
    joblib.dump(tiny_model, paths.model)
    paths.threshold_json.write_text(json.dumps({"threshold": TINY_THRESHOLD}))
    paths.metrics_json.write_text(json.dumps({"auc": 0.75, "business_cost": 0.5, "threshold": TINY_THRESHOLD}))
    return root


@pytest.fixture(scope="session")
def validator():
    from scoring.data.validation import ContractValidator

    return ContractValidator()


@pytest.fixture(scope="session")
def real_raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Kaggle-like raw folder made of links to the real rows (the key-coherent subsets)."""
    links = {
        "application_train.csv.gz": "coherent10k/application_train.csv.gz",
        "bureau.csv.gz": "coherent10k/bureau.csv.gz",
        "bureau_balance.csv.gz": "coherent10k/bureau_balance.csv.gz",
        "credit_card_balance.csv.gz": "coherent10k/credit_card_balance.csv.gz",
        "previous_application.csv.gz": "idrange_100002_100999/previous_application.csv.gz",
        "application_test.csv.gz": "application_test.csv.gz",
    }
    raw = tmp_path_factory.mktemp("kaggle_raw")
    for name, relative in links.items():
        (raw / name).symlink_to(shared_file(relative))
    return raw


@pytest.fixture(scope="session")
def real_prepared(real_raw_dir, validator, tmp_path_factory):
    """The real rows through prepare: (result, prepared folder)."""
    from scoring.data.prepare import prepare_tables

    base = tmp_path_factory.mktemp("real_prepared")
    result = prepare_tables(real_raw_dir, base / "prepared", base / "reports", validator)
    return result, base / "prepared"
