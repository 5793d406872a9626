"""Settings: params.yaml read into typed sections, and the catalog of every path and file name.

The bottom layer of the package: it imports nothing of ours. Every default lives in params.yaml, none here: a
section's fields have no default, and a missing, unknown or ill-typed key is an error that names it and says where
to fix it. `Paths` is the catalog: the folders come from params.yaml `paths:`, the file names inside them are
defined here once and read by name everywhere (stages, serving, monitoring, the app); a test checks them against
dvc.yaml's outputs.

With SCORING_PARAMS_TRACE=<folder> set, every leaf key a process reads (`train.cv_folds`, `paths.models`) is written
at exit to `<folder>/<script>.json`: the tests run `dvc repro` that way and check that each stage declares in
dvc.yaml every params key it reads.
"""
from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import sys
import types
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

import yaml

PARAMS_FILE = Path("params.yaml")
TRACE_ENV = "SCORING_PARAMS_TRACE"
_read_keys: set[str] = set()

ModelName = Literal["logreg", "random_forest", "xgboost", "lightgbm"]
Imbalance = Literal["class_weight", "undersample", "smote", "none"]
Calibration = Literal["isotonic", "sigmoid"]
Source = Literal["synthetic", "kaggle"]


class SettingsError(ValueError):
    """params.yaml does not hold what the code reads: a missing, unknown or ill-typed key."""


class Section:
    """A typed params.yaml section; every field read is recorded under its dotted key (for the dvc.yaml check)."""

    _key: str

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name[0] != "_" and name in field_names(type(self)) and not isinstance(value, Section):
            key = object.__getattribute__(self, "__dict__").get("_key")
            if key is not None:
                _read_keys.add(f"{key}.{name}")
        return value


@functools.cache
def field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


# ---- sections ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paths(Section):
    """The catalog: the folders of params.yaml `paths:` and the file names inside them. Every file one module writes
    and another reads is named here once."""

    raw: Path
    synthetic: Path
    prepared: Path
    features: Path
    models: Path
    reports: Path
    production: Path
    outcomes: Path

    ORACLE: ClassVar[str] = "oracle.parquet"
    HISTORY: ClassVar[str] = "history.parquet"
    TRAIN: ClassVar[str] = "train.parquet"
    HOLDOUT: ClassVar[str] = "holdout.parquet"
    TEST: ClassVar[str] = "test.parquet"
    MODEL: ClassVar[str] = "model.joblib"
    VALIDATED: ClassVar[str] = "validated.joblib"
    OOF: ClassVar[str] = "oof.parquet"
    VALIDATION_MD: ClassVar[str] = "validation.md"
    VALIDATION_JSON: ClassVar[str] = "validation.json"
    TRAIN_REPORT: ClassVar[str] = "train.json"
    THRESHOLD: ClassVar[str] = "threshold.json"
    THRESHOLD_DIR: ClassVar[str] = "threshold"
    METRICS: ClassVar[str] = "metrics.json"
    FAIRNESS: ClassVar[str] = "fairness.json"
    EVALUATE_DIR: ClassVar[str] = "evaluate"
    DRIFT: ClassVar[str] = "drift.json"
    DRIFT_DIR: ClassVar[str] = "drift"
    DECK: ClassVar[str] = "deck.pptx"
    SERVING: ClassVar[str] = "serving.json"
    SHAP_IMPORTANCE: ClassVar[str] = "shap_importance.csv"
    PERFORMANCE: ClassVar[str] = "performance.json"
    PERFORMANCE_DIR: ClassVar[str] = "performance"

    def prepared_table(self, table: str) -> Path:
        return self.prepared / f"{table}.parquet"

    @property
    def synthetic_oracle(self) -> Path:
        """The generator's true probabilities of default (synthetic data only, never a feature)."""
        return self.synthetic / self.ORACLE

    @property
    def prepared_oracle(self) -> Path:
        return self.prepared / self.ORACLE

    @property
    def history(self) -> Path:
        """The per-applicant history aggregates, written by featurize and loaded by every scorer."""
        return self.features / self.HISTORY

    @property
    def train_features(self) -> Path:
        return self.features / self.TRAIN

    @property
    def holdout_features(self) -> Path:
        return self.features / self.HOLDOUT

    @property
    def test_features(self) -> Path:
        return self.features / self.TEST

    @property
    def model(self) -> Path:
        """The model every scorer serves (the registry's versions carry it): with `train.release: all_labelled`,
        the chosen procedure refitted on every labelled applicant, holdout included."""
        return self.models / self.MODEL

    @property
    def validated_model(self) -> Path:
        """The chosen model fitted on the training rows only: evaluate's holdout figures and the champion gate are
        its (the same model as `model` with `train.release: training_rows`)."""
        return self.models / self.VALIDATED

    @property
    def oof(self) -> Path:
        """Out-of-fold scores of every candidate, and the chosen model's calibrated ones."""
        return self.models / self.OOF

    @property
    def validation_report(self) -> Path:
        return self.reports / self.VALIDATION_MD

    @property
    def validation_json(self) -> Path:
        return self.reports / self.VALIDATION_JSON

    @property
    def train_report(self) -> Path:
        return self.reports / self.TRAIN_REPORT

    @property
    def threshold_json(self) -> Path:
        """The decision threshold: the one file that holds it."""
        return self.reports / self.THRESHOLD

    @property
    def threshold_dir(self) -> Path:
        return self.reports / self.THRESHOLD_DIR

    @property
    def metrics_json(self) -> Path:
        return self.reports / self.METRICS

    @property
    def fairness_json(self) -> Path:
        """The fairness gate's report (`scoring.model.fairness`): groups, intervals, pass or fail."""
        return self.reports / self.FAIRNESS

    @property
    def evaluate_dir(self) -> Path:
        return self.reports / self.EVALUATE_DIR

    @property
    def drift_json(self) -> Path:
        return self.reports / self.DRIFT

    @property
    def drift_dir(self) -> Path:
        return self.reports / self.DRIFT_DIR

    @property
    def deck(self) -> Path:
        return self.reports / self.DECK

    @property
    def serving_json(self) -> Path:
        """The serving benchmark's figures (bench/serve.py), committed, read by the deck."""
        return self.reports / self.SERVING

    @property
    def shap_importance(self) -> Path:
        return self.evaluate_dir / self.SHAP_IMPORTANCE

    @property
    def cost_curve_csv(self) -> Path:
        return self.threshold_dir / "cost_curve.csv"

    @property
    def cost_curve_png(self) -> Path:
        return self.threshold_dir / "cost_curve.png"

    @property
    def roc_png(self) -> Path:
        return self.evaluate_dir / "roc.png"

    @property
    def precision_recall_png(self) -> Path:
        return self.evaluate_dir / "precision_recall.png"

    @property
    def calibration_csv(self) -> Path:
        return self.evaluate_dir / "calibration.csv"

    @property
    def calibration_png(self) -> Path:
        return self.evaluate_dir / "calibration.png"

    @property
    def holdout_cost_curve_png(self) -> Path:
        return self.evaluate_dir / "holdout_cost_curve.png"

    @property
    def confusion_csv(self) -> Path:
        return self.evaluate_dir / "confusion.csv"

    @property
    def shap_importance_png(self) -> Path:
        return self.evaluate_dir / "shap_importance.png"

    @property
    def shap_summary_png(self) -> Path:
        return self.evaluate_dir / "shap_summary.png"

    @property
    def fairness_csv(self) -> Path:
        return self.evaluate_dir / "fairness.csv"

    @property
    def local_explanations(self) -> Path:
        return self.evaluate_dir / "local_explanations.json"

    @property
    def model_card(self) -> Path:
        return self.evaluate_dir / "model_card.md"

    def waterfall_png(self, label: str, applicant: int | str) -> Path:
        return self.evaluate_dir / f"waterfall_{label}_{applicant}.png"

    def lime_png(self, label: str, applicant: int | str) -> Path:
        return self.evaluate_dir / f"lime_{label}_{applicant}.png"

    @property
    def column_drift_png(self) -> Path:
        return self.drift_dir / "column_drift.png"

    @property
    def feature_psi_png(self) -> Path:
        return self.drift_dir / "feature_psi.png"

    @property
    def score_distribution_png(self) -> Path:
        return self.drift_dir / "score_distribution.png"

    @property
    def performance_json(self) -> Path:
        """Realised performance once outcomes arrived, and its verdict (the performance stage)."""
        return self.reports / self.PERFORMANCE

    @property
    def performance_dir(self) -> Path:
        return self.reports / self.PERFORMANCE_DIR

    @property
    def classification_html(self) -> Path:
        return self.performance_dir / "classification_report.html"

    @property
    def performance_png(self) -> Path:
        return self.performance_dir / "performance_by_period.png"


@dataclass(frozen=True)
class SyntheticDrift(Section):
    enabled: bool
    income_factor: float
    age_shift_years: float
    ext_source_shift: float
    rare_category_share: float


@dataclass(frozen=True)
class SyntheticSettings(Section):
    n_applicants: int
    n_test: int
    seed: int
    default_rate: float
    chunk_size: int
    drift: SyntheticDrift


@dataclass(frozen=True)
class DataSettings(Section):
    source: Source
    synthetic: SyntheticSettings


@dataclass(frozen=True)
class ComputeSettings(Section):
    """Where the pipeline's heavy stages run: `local` (this process) or `ray` (a Ray cluster: `address`, or a
    single-node Ray on 127.0.0.1 started by the stage when empty), the history rows spread over `buckets`."""

    backend: Literal["local", "ray"]
    address: str
    buckets: int
    scratch: str
    train_workers: int
    train_sample: int


@dataclass(frozen=True)
class SplitSettings(Section):
    holdout_fraction: float
    seed: int


@dataclass(frozen=True)
class TrainSettings(Section):
    models: tuple[ModelName, ...]
    model: Literal["auto", "logreg", "random_forest", "xgboost", "lightgbm"]
    imbalance: Imbalance
    cv_folds: int
    oof_folds: int
    oof_repeats: int
    noise_se: float
    search: Literal["quick", "thorough"]
    search_draws: dict[str, int]
    early_stopping: dict[str, int]
    early_stopping_each_fold: bool
    calibration: Calibration
    seed: int
    n_jobs: int
    grids: dict[str, dict[str, list[Any]]]
    decreasing: tuple[str, ...]
    release: Literal["all_labelled", "training_rows"]


@dataclass(frozen=True)
class CostSettings(Section):
    fn: float
    fp: float


@dataclass(frozen=True)
class IntervalSettings(Section):
    """Bootstrap intervals of a stage's figures (threshold: out-of-fold cost; evaluate: holdout AUC and cost)."""

    bootstrap: int
    confidence: float
    seed: int


@dataclass(frozen=True)
class ReasonSettings(Section):
    default: int
    max: int


@dataclass(frozen=True)
class ProtectedSettings(Section):
    """Fields never used as model inputs, kept to measure fairness; age stays an input, measured by band."""

    fields: tuple[str, ...]
    age_bands: tuple[int, ...]


@dataclass(frozen=True)
class FairnessSettings(Section):
    """The fairness gate of evaluate: a group's figure beyond a threshold fails it (the model is not champion)."""

    min_approval_ratio: float
    max_opportunity_gap: float
    max_calibration_gap: float
    min_group_size: int
    gated: dict[str, list[str]]
    """attribute -> the measures that fail the gate (approval_ratio, opportunity_gap, calibration_gap)"""
    bootstrap: int
    confidence: float
    seed: int


@dataclass(frozen=True)
class DriftSettings(Section):
    columns: tuple[str, ...]
    stattest: str | None
    num_stattest: str | None
    cat_stattest: str | None
    stattest_threshold: float | None
    drift_share: float
    psi_top_features: int
    psi_threshold: float
    psi_bins: int
    sample_size: int | None
    min_rows: int
    out_of_contract_share: float
    seed: int


@dataclass(frozen=True)
class PerformanceSettings(Section):
    """Realised performance once repayment outcomes arrive (`paths.outcomes`), against the training figures."""

    period: Literal["day", "week", "month"]
    min_outcomes: int
    bootstrap: int
    confidence: float
    auc_tolerance: float
    cost_tolerance: float
    calibration_tolerance: float
    seed: int


@dataclass(frozen=True)
class ProductionLogSettings(Section):
    """The service's log (`paths.production`), enforced by each writing process: past `max_file_mb` (bytes on disk)
    or `max_file_minutes` its file is closed and another started; then the folder's closed files older than
    `retention_days` are deleted, and the oldest beyond `max_total_gb` (every process's files together)."""

    max_file_mb: float
    max_file_minutes: float
    retention_days: float
    max_total_gb: float


@dataclass(frozen=True)
class TrackingSettings(Section):
    enabled: bool
    uri: str
    experiment: str
    artifacts: str


@dataclass(frozen=True)
class Settings(Section):
    paths: Paths
    data: DataSettings
    compute: ComputeSettings
    split: SplitSettings
    train: TrainSettings
    cost: CostSettings
    threshold: IntervalSettings
    evaluate: IntervalSettings
    reasons: ReasonSettings
    protected: ProtectedSettings
    fairness: FairnessSettings
    drift: DriftSettings
    performance: PerformanceSettings
    production_log: ProductionLogSettings
    tracking: TrackingSettings

    def under(self, root: Path) -> Settings:
        """The same settings with every relative path (folders, the SQLite store, the artifact store) taken from
        `root` instead of the working directory: for a server started elsewhere than the project."""
        paths = keyed(replace(self.paths, **{f.name: Path(root) / getattr(self.paths, f.name)
                                             for f in fields(Paths)}), "paths")
        tracking = keyed(replace(self.tracking, uri=rooted_uri(self.tracking.uri, Path(root)),
                                 artifacts=str(Path(root) / self.tracking.artifacts)), "tracking")
        return keyed(replace(self, paths=paths, tracking=tracking), "")


def keyed(section: Section, key: str) -> Any:
    object.__setattr__(section, "_key", key)
    return section


def rooted_uri(uri: str, root: Path) -> str:
    """A relative SQLite URI (sqlite:///mlflow.db) made absolute under `root`; other URIs unchanged."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        return prefix + str((root / uri[len(prefix):]).resolve())
    return uri


# ---- reading params.yaml ------------------------------------------------------------------------------------------
def read_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml as a plain mapping (for the MLflow mirror, which logs all of it; not traced)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run from the repository root (where dvc.yaml is), or give its "
                                "path")
    return yaml.safe_load(path.read_text())


def load_settings(path: Path = PARAMS_FILE) -> Settings:
    """params.yaml as typed sections; SettingsError names every key that is missing, unknown or ill-typed."""
    if os.environ.get(TRACE_ENV):
        atexit.register(write_trace, Path(os.environ[TRACE_ENV]))
    return settings_from(read_params(path), str(path))


def settings_from(raw: dict[str, Any], source: str = "params.yaml") -> Settings:
    try:
        return build(Settings, raw, "")
    except SettingsError as error:
        raise SettingsError(f"{source}: {error}") from None


def build(cls: type, raw: Any, key: str) -> Any:
    if not isinstance(raw, dict):
        raise SettingsError(f"{key or 'the file'} must be a mapping of keys, got {raw!r}")
    names = [f.name for f in fields(cls)]
    where = f"{key}: " if key else ""
    if missing := [n for n in names if n not in raw]:
        raise SettingsError(f"{where}missing key(s) {missing}")
    if unknown := sorted(set(raw) - set(names)):
        raise SettingsError(f"{where}unknown key(s) {unknown}; known: {names}")
    hints = get_type_hints(cls)
    return keyed(cls(**{n: convert(hints[n], raw[n], f"{key}.{n}" if key else n) for n in names}), key)


def convert(kind: Any, value: Any, key: str) -> Any:
    """`value` as `kind` (a section, Path, tuple, Literal, optional or plain type), or SettingsError naming `key`."""
    origin, args = get_origin(kind), get_args(kind)
    if isinstance(kind, type) and issubclass(kind, Section):
        return build(kind, value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return convert(next(a for a in args if a is not type(None)), value, key)
    if origin is Literal:
        if value not in args:
            raise SettingsError(f"{key} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SettingsError(f"{key} must be a list, got {value!r}")
        return tuple(convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(value))
    if kind is Path:
        return Path(value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (int, bool, str) and not (isinstance(value, kind) and (kind is bool or not isinstance(value, bool))):
        raise SettingsError(f"{key} must be {'an' if kind is int else 'a'} {kind.__name__}, got {value!r}")
    if kind is float:
        raise SettingsError(f"{key} must be a number, got {value!r}")
    return value


# ---- the trace of what was read ------------------------------------------------------------------------------------
def keys_read() -> set[str]:
    return set(_read_keys)


def write_trace(folder: Path) -> None:
    """Add the keys this process read to `<folder>/<script name>.json` (a stage may run several times)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{Path(sys.argv[0]).stem or 'python'}.json"
    known = set(json.loads(out.read_text())) if out.exists() else set()
    out.write_text(json.dumps(sorted(known | _read_keys)))


# ---- dvc.yaml, read as data ----------------------------------------------------------------------------------------
def dvc_outputs(pipeline: dict[str, Any], paths: Paths) -> dict[str, list[str]]:
    """Stage name -> what it writes (metrics first, then outs), `${paths.x}` resolved from the catalog."""
    def resolve(path: str) -> str:
        return re.sub(r"\$\{paths\.(\w+)\}", lambda m: str(getattr(paths, m.group(1))), path).rstrip("/")

    return {name: [resolve(next(iter(entry)) if isinstance(entry, dict) else entry)
                   for entry in stage.get("metrics", []) + stage.get("outs", [])]
            for name, stage in pipeline["stages"].items()}


def configure_logging() -> None:
    """Logging for command-line entry points (stages, tools, servers); quiet the chatty libraries."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("great_expectations", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
