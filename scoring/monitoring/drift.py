"""Drift monitor: are the applicants scored today still the population the model learned from?

Reference: the labelled training applicants. Current: the application_test-like table and, when the scoring service
has logged any, the applicants it scored (`paths.production`). Each current population is its own section, compared
with the same reference in three ways:

* the application fields a risk officer reads (income, age, EXT_SOURCE, income type, organisation, ...): Evidently's
  DataDriftPreset, one test per field. By default Evidently chooses: with more than 1,000 reference rows, the normed
  Wasserstein distance for numbers and the Jensen-Shannon distance for categories, drift at >= 0.1. Distances, not
  p-values: on large samples a p-value calls every tiny difference "significant".
* the model's most important features (mean |SHAP| from evaluate): PSI on the reference's deciles;
* the model's scores: PSI, Kolmogorov-Smirnov and Wasserstein distance between the probabilities.

Kaggle's sentinels (DAYS_EMPLOYED = 365243, REGION_RATING = -1) are codes, not amounts: they count as missing, and
each field's missing share is reported beside its test (Evidently's tests look at the values present only).

Whatever a log holds, the tests see only values the data contract accepts: a value it refuses (beyond the field's
plausible range, NaN or infinite, not whole where whole numbers are due, an unknown category, text where a number is
due) is counted per field, its share reported (`out_of_contract`) and flagged above `drift.out_of_contract_share` as
a data-quality signal, and read as missing before any distance, PSI or score: one 1.8e308 would otherwise fill a
histogram's range (Evidently's bins fail on it) and move every distance. The production log is read as a seeded
sample of `drift.sample_size` rows drawn while reading (memory bounded whatever its size); its section says which
time window and how many rows it covers.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring import contract, features
from scoring.model import tracking
from scoring.monitoring import drift_plots
from scoring.monitoring.production_log import (
    LoggedApplicants,
    contract_breaches,
    production_details,
    read_production_log,
    without_breaches,
)
from scoring.monitoring.psi import psi
from scoring.serving.engine import ScoringEngine
from scoring.settings import DriftSettings, Paths, TrackingSettings

logger = logging.getLogger(__name__)

SECTIONS = {"test": "application_test", "production": "production log"}
HTML = {"test": "drift_report.html", "production": "drift_report_production.html"}
APPLICATION = contract.table("application_test")
STEADY_ROWS = 2_000
"""Below this many current rows, the distances' sampling noise nears their 0.1 threshold (on ORGANIZATION_TYPE's 58
categories the Jensen-Shannon distance of two samples of one population is about 0.15 at 300 rows, 0.05 at 3,000)."""


@dataclass(frozen=True)
class Population:
    """One side of a comparison: application fields, model features, the model's probabilities."""

    fields: pd.DataFrame
    features: pd.DataFrame
    probability: np.ndarray
    out_of_contract: Mapping[str, float] = field(default_factory=dict)
    """Share of each application field's values the data contract refuses (read as missing here); fields with none
    left out."""


def checked(p: DriftSettings) -> DriftSettings:
    """params.yaml `drift:`, its fields checked against the data contract."""
    if bad := [c for c in p.columns if c not in APPLICATION.names or c == features.KEY]:
        raise ValueError(f"params.yaml drift.columns: {bad} not application fields of the data contract "
                         "(scoring/contract.py, table application_test)")
    return p


def is_categorical(name: str) -> bool:
    return APPLICATION.column(name).kind in ("category", "flag")


def typed_applicants(frame: pd.DataFrame, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Contract application columns (all, or `names`; absent ones missing): categories as plain strings or None,
    the others float64 (a value that is not a number becomes missing)."""
    out = {}
    for col in (APPLICATION.column(n) for n in names) if names is not None else APPLICATION.columns:
        values = frame[col.name] if col.name in frame else pd.Series(np.nan, index=frame.index)
        if col.kind == "category":
            out[col.name] = values.astype(object).where(values.notna(), None)
        else:
            out[col.name] = pd.to_numeric(values, errors="coerce").astype("float64")
    return pd.DataFrame(out, index=frame.index)


def within_contract(apps: pd.DataFrame, counted: Mapping[str, int] | None = None, rows: int | None = None
                    ) -> tuple[pd.DataFrame, dict[str, float]]:
    """The contract's application columns of `apps` with every value the contract refuses read as missing, and the
    share refused per field: counted here, or `counted` over `rows` (the production log counts over every row it
    read, not only the sample)."""
    typed = typed_applicants(apps)
    breaches = contract_breaches(typed)
    if counted is None:
        counted, rows = {name: int(bad.sum()) for name, bad in breaches.items()}, len(typed)
    shares = {name: _number(count / rows, 6) for name, count in sorted(counted.items()) if count and rows}
    return without_breaches(typed, breaches), shares


def application_fields(apps: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The fields as the drift tests read them: categories as strings, numbers as float64, sentinels missing."""
    typed = typed_applicants(apps, columns)
    out = {}
    for name in columns:
        col, values = APPLICATION.column(name), typed[name]
        out[name] = values.mask(values == col.sentinel) if col.sentinel is not None else values
    return pd.DataFrame(out, index=apps.index)


def subsample(frame: pd.DataFrame, size: int | None, seed: int) -> pd.DataFrame:
    return frame if size is None or len(frame) <= size else frame.sample(size, random_state=seed)


def _number(value: Any, digits: int = 5) -> float | None:
    """A JSON-safe rounded float; None for NaN or infinity (DVC and MLflow cannot read those)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def parse_snapshot(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per tested field from Evidently's snapshot dict: its test, score, threshold and verdict.

    The verdict is Evidently's own (its per-column test failed), so it is right for distances (drift when the score
    is at or above the threshold) and for p-values (drift below it) alike.
    """
    tests = {t["metric_config"]["metric_id"]: t["status"] for t in result.get("tests", []) if t.get("id") == "drift"}
    records = []
    for metric in result["metrics"]:
        config = metric["config"]
        if not config["type"].endswith(":ValueDrift"):
            continue
        if metric["id"] not in tests:
            raise RuntimeError(f"Evidently gave no drift test for column {config['column']!r}: "
                               "the report must be run with include_tests=True")
        records.append({"column": config["column"], "stattest": config["method"], "score": _number(metric["value"]),
                        "threshold": config["threshold"], "drifted": tests[metric["id"]] == "FAIL"})
    return records


def column_drift(reference: pd.DataFrame, current: pd.DataFrame, p: DriftSettings) -> tuple[Any, list[dict[str, Any]]]:
    """Evidently's DataDriftPreset on the fields; returns the snapshot (for the HTML) and one record per field.

    A field with no value at all on one side cannot be tested: it counts as drifted when the other side has values
    (a field the service stopped receiving is a change), as not drifted when both sides are empty.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.calculations.stattests.registry import (
        StatTestInvalidFeatureTypeError,
        StatTestNotFoundError,
    )
    from evidently.presets import DataDriftPreset

    empty = {c: (reference[c].isna().all(), current[c].isna().all()) for c in reference.columns}
    tested = [c for c, (ref_empty, cur_empty) in empty.items() if not (ref_empty or cur_empty)]
    categorical = [c for c in tested if is_categorical(c)]
    definition = DataDefinition(numerical_columns=[c for c in tested if c not in categorical],
                                categorical_columns=categorical)
    preset = DataDriftPreset(columns=tested, method=p.stattest, num_method=p.num_stattest, cat_method=p.cat_stattest,
                             threshold=p.stattest_threshold, drift_share=p.drift_share)
    try:
        snapshot = Report([preset], include_tests=True).run(
            current_data=Dataset.from_pandas(current[tested], data_definition=definition),
            reference_data=Dataset.from_pandas(reference[tested], data_definition=definition))
    except (StatTestNotFoundError, StatTestInvalidFeatureTypeError) as error:
        raise ValueError(f"params.yaml drift.stattest / num_stattest / cat_stattest: {error} (a test for one type "
                         "only goes in num_stattest or cat_stattest)") from None
    records = {r["column"]: r for r in parse_snapshot(snapshot.dict())}
    for name, (ref_empty, cur_empty) in empty.items():
        if name not in records:
            logger.warning("drift: %s has no value in the %s data: not tested", name,
                           "reference" if ref_empty else "current")
            records[name] = {"column": name, "stattest": "no values on one side", "score": None, "threshold": None,
                             "drifted": bool(ref_empty != cur_empty)}
    for name, record in records.items():
        record["missing_reference"] = _number(reference[name].isna().mean(), 4)
        record["missing_current"] = _number(current[name].isna().mean(), 4)
    return snapshot, [records[c] for c in reference.columns]


def top_features(importance: pd.DataFrame, available: Sequence[str], n: int) -> list[str]:
    """The n model features with the largest mean |SHAP| (evaluate's shap_importance.csv: feature, mean_abs_shap)."""
    ranked = importance.sort_values("mean_abs_shap", ascending=False)["feature"]
    return [f for f in ranked if f in set(available)][:n]


def feature_psi(reference: pd.DataFrame, current: pd.DataFrame, names: Sequence[str], p: DriftSettings
                ) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        value = psi(reference[name], current[name], p.psi_bins)
        rows.append({"feature": name, "psi": _number(value), "drifted": bool(value >= p.psi_threshold)})
    return rows


def prediction_drift(reference: np.ndarray, current: np.ndarray, p: DriftSettings) -> dict[str, Any]:
    """How the model's probabilities moved: PSI on the reference's deciles, Kolmogorov-Smirnov, Wasserstein, means."""
    from scipy.stats import ks_2samp, wasserstein_distance

    value = psi(pd.Series(reference), pd.Series(current), p.psi_bins)
    ks = ks_2samp(reference, current)
    return {"prediction_psi": _number(value), "prediction_ks": _number(ks.statistic),
            "prediction_ks_pvalue": _number(ks.pvalue, 8),
            "prediction_wasserstein": _number(wasserstein_distance(reference, current)),
            "mean_probability_reference": _number(np.mean(reference)),
            "mean_probability_current": _number(np.mean(current)),
            "prediction_drift": int(value >= p.psi_threshold)}


def compare(reference: Population, current: Population, top: Sequence[str], p: DriftSettings
            ) -> tuple[Any, dict[str, Any]]:
    """One section of the report: field tests (Evidently), PSI of the top model features, prediction drift."""
    if len(current.fields) < STEADY_ROWS:
        logger.warning("drift: only %d current rows: a field's distance near its threshold may be sampling noise "
                       "(many-category fields most); the PSI of the model features is steadier", len(current.fields))
    snapshot, columns = column_drift(reference.fields, current.fields, p)
    for record in columns:
        record["out_of_contract_reference"] = reference.out_of_contract.get(record["column"], 0.0)
        record["out_of_contract_current"] = current.out_of_contract.get(record["column"], 0.0)
    psi_rows = feature_psi(reference.features, current.features, top, p)
    n_drifted = sum(c["drifted"] for c in columns)
    share = n_drifted / len(columns) if columns else 0.0
    psi_values = [r["psi"] for r in psi_rows if r["psi"] is not None]
    section = {
        "rows": len(current.fields), "reference_rows": len(reference.fields),
        "n_columns": len(columns), "n_drifted": n_drifted, "share_drifted": round(share, 4),
        "dataset_drift": int(share >= p.drift_share),
        "n_psi_drifted": sum(r["drifted"] for r in psi_rows), "psi_max": max(psi_values, default=0.0),
        **prediction_drift(reference.probability, current.probability, p),
        "drifted_columns": [c["column"] for c in columns if c["drifted"]],
        "drifted_features": [r["feature"] for r in psi_rows if r["drifted"]],
        **data_quality(current, p),
        "columns": columns, "features_psi": psi_rows,
    }
    return snapshot, section


def data_quality(current: Population, p: DriftSettings) -> dict[str, Any]:
    """The fields with values the contract refuses: every one with its share, those above the setting flagged."""
    flagged = [name for name, share in current.out_of_contract.items() if share > p.out_of_contract_share]
    return {"out_of_contract": dict(current.out_of_contract), "out_of_contract_fields": flagged,
            "data_quality_drift": int(bool(flagged))}


def population(engine: ScoringEngine, apps: pd.DataFrame, p: DriftSettings, counted: Mapping[str, int] | None = None,
               rows: int | None = None) -> tuple[Population, pd.DataFrame]:
    """A seeded sample of these applicants, the values the contract refuses read as missing (their shares: counted
    on the sample, or `counted` of `rows`), scored by the engine as the service scores them (their history by
    SK_ID_CURR, none when it is missing); also returns the sample."""
    sample = subsample(apps, p.sample_size, p.seed)
    clean, shares = within_contract(sample, counted, rows)
    scores = engine.score_table(clean, explain=False)
    return Population(application_fields(clean, p.columns), scores.feature_frame(engine.columns),
                      scores.probability, shares), sample


def load_reference(paths: Paths, engine: ScoringEngine, p: DriftSettings) -> Population:
    """The labelled applicants. Their scores come from the holdout only: on the rows it was fitted on, a model can be
    sharper than on any new applicant, which would read as prediction drift."""
    labelled, sample = population(engine, pd.read_parquet(paths.prepared_table("application_train")), p)
    holdout = pd.read_parquet(paths.holdout_features, columns=["TARGET"]).index
    in_holdout = sample[features.KEY].isin(holdout).to_numpy()
    return Population(labelled.fields, labelled.features, labelled.probability[in_holdout])


def load_test(paths: Paths, engine: ScoringEngine, p: DriftSettings) -> Population | None:
    table = paths.prepared_table("application_test")
    if not table.exists():
        logger.warning("no application_test table (%s): its section is left out", table)
        return None
    return population(engine, pd.read_parquet(table), p)[0]


def load_production(log: LoggedApplicants, engine: ScoringEngine, p: DriftSettings) -> Population | None:
    """Logged applicants (the reader's sample) re-scored by the same model as the reference, so that a move of the
    scores is the data's, not a model change; the shares out of contract are the reader's, over every row."""
    if log.applicants.empty:
        return None
    return population(engine, log.applicants, p, log.out_of_contract, log.rows_logged)[0]


def load_engine(paths: Paths) -> ScoringEngine:
    import joblib

    if not paths.model.exists():
        raise FileNotFoundError(f"{paths.model} not found: the drift stage scores both populations with the "
                                "pipeline's model; run `dvc repro train` first")
    return ScoringEngine(joblib.load(paths.model), None, pd.read_parquet(paths.history))


def read_importance(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the model features are ranked by evaluate's SHAP importance "
                                "(columns feature, mean_abs_shap); run `dvc repro evaluate` first")
    return pd.read_csv(path)


def build_report(paths: Paths, p: DriftSettings, out_dir: Path) -> dict[str, Any]:
    """Compare each current population with the reference; write the Evidently HTML and the figures into `out_dir`.

    Returns drift.json's content: the application_test section at the top level, the production log's section
    under `production` (`{"rows": 0}` while the service has logged nothing).
    """
    log = read_production_log(paths.production, max_rows=p.sample_size, seed=p.seed)  # first: its peak is alone
    details = production_details(log) if log.files else None
    engine = load_engine(paths)
    reference = load_reference(paths, engine, p)
    top = top_features(read_importance(paths.shap_importance), engine.columns, p.psi_top_features)
    production = load_production(log, engine, p)
    del log  # its raw rows: only the population is needed from here (memory)
    currents = {name: current for name, current in (("test", load_test(paths, engine, p)), ("production", production))
                if current is not None}
    if not currents:
        raise FileNotFoundError(f"nothing to compare with the training applicants: no application_test in "
                                f"{paths.prepared} and no scored applicant in {paths.production}")
    sections: dict[str, dict[str, Any]] = {}
    for name, current in list(currents.items()):
        if len(current.fields) < p.min_rows:
            logger.warning("drift: %s has %d rows, fewer than drift.min_rows = %d: not tested", SECTIONS[name],
                           len(current.fields), p.min_rows)
            sections[name] = {"rows": len(current.fields), **data_quality(current, p)}
            del currents[name]
            continue
        snapshot, sections[name] = compare(reference, current, top, p)
        snapshot.save_html(str(out_dir / HTML[name]))
    if details is not None:
        sections["production"] = {**sections.get("production", {"rows": 0}), **details}
    write_figures(paths, reference, currents, {name: sections[name] for name in currents}, p, out_dir)
    return {**sections.get("test", {"rows": 0}), "production": sections.get("production", {"rows": 0})}


def write_figures(paths: Paths, reference: Population, currents: Mapping[str, Population],
                  sections: Mapping[str, dict[str, Any]], p: DriftSettings, out_dir: Path) -> None:
    if not currents:
        return
    labels = {SECTIONS[name]: section for name, section in sections.items()}
    drift_plots.column_drift_figure({k: s["columns"] for k, s in labels.items()}, out_dir / paths.column_drift_png.name)
    drift_plots.psi_figure({k: s["features_psi"] for k, s in labels.items()}, p.psi_threshold,
                           out_dir / paths.feature_psi_png.name)
    drift_plots.score_figure(reference.probability, {SECTIONS[k]: c.probability for k, c in currents.items()},
                             p.psi_bins, out_dir / paths.score_distribution_png.name)


def summary_line(report: Mapping[str, Any]) -> str:
    parts = []
    for label, section in (("application_test", report), ("production log", report["production"])):
        if "n_columns" in section:
            parts.append(f"{label} ({section['rows']:,} rows): {section['n_drifted']}/{section['n_columns']} fields "
                         f"drifted{' (dataset drift)' if section['dataset_drift'] else ''} "
                         f"{section['drifted_columns']}, {section['n_psi_drifted']} model feature(s) with PSI over "
                         f"the threshold, prediction PSI {section['prediction_psi']:.3f}, mean probability "
                         f"{section['mean_probability_reference']:.3f} -> {section['mean_probability_current']:.3f}"
                         + (f", values out of contract in {section['out_of_contract_fields']}"
                            if section["out_of_contract_fields"] else ""))
    return "; ".join(parts)


def log_to_mlflow(tracking_params: TrackingSettings, p: DriftSettings, report: Mapping[str, Any],
                  artifacts: Sequence[Path]) -> str | None:
    """One MLflow run tagged stage=drift in the pipeline's experiment: settings, summary metrics, the reports."""
    if not tracking_params.enabled:
        return None
    mlflow = tracking.setup(tracking_params)
    experiment = os.environ.get("DVC_EXP_NAME", "workspace")
    with mlflow.start_run(run_name=f"drift-{experiment}") as run:
        mlflow.set_tags({"stage": "drift", "git_commit": tracking.git_commit(), "dvc_experiment": experiment})
        mlflow.log_params(tracking.flatten({"drift": asdict(p)}))
        mlflow.log_metrics(tracking.numeric_metrics(report))
        for path in artifacts:
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.exists():
                mlflow.log_artifact(str(path))
    logger.info("MLflow run %s (stage=drift, %s)", run.info.run_id, tracking.resolve_uri(tracking_params))
    return run.info.run_id
