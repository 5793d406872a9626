"""Realised performance once repayment outcomes arrive: does the model still rank and price risk as at training?

Outcomes are files people drop in `paths.outcomes` (SK_ID_CURR, TARGET; CSV or Parquet, see data/outcomes/README.md).
They are joined by SK_ID_CURR to the production log (each applicant's last production score: its time, probability
and the decision the service gave), and measured overall and by scoring period (day, week or month of the score,
UTC): realised AUC, business cost of the served decisions, approval rate and calibration (observed default rate over
mean predicted probability), each with a bootstrap interval (`scoring.model.intervals`), against the training figures
of reports/metrics.json.

The verdict a script can gate on: `retrain_recommended` when a figure is worse than training with its whole interval
past the training figure and by more than its tolerance (`performance.*_tolerance`); `degraded` when only the interval
says worse; `stable` otherwise; `insufficient_outcomes` below `performance.min_outcomes` joined applicants (or with a
single class). It is taken on the whole and on the latest period with enough outcomes (a recent decay would otherwise
hide in older, good months).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.model import intervals
from scoring.model.cost import applicant_costs
from scoring.monitoring.production_log import read_production_log
from scoring.settings import CostSettings, PerformanceSettings

logger = logging.getLogger(__name__)
KEY, TARGET = "SK_ID_CURR", "TARGET"
VERDICTS = ("stable", "degraded", "retrain_recommended")
INSUFFICIENT = "insufficient_outcomes"
OUTCOME_SUFFIXES = (".csv", ".csv.gz", ".parquet")
FREQUENCIES = {"day": "D", "week": "W", "month": "M"}
LOG_COLUMNS = [KEY, "probability", "decision", "traffic"]


@dataclass(frozen=True)
class Outcomes:
    frame: pd.DataFrame
    """SK_ID_CURR (int64) and TARGET (int8), one row per applicant (the file sorting last by name wins)."""
    files: int
    bad_rows: int
    """Rows left out: no or bad SK_ID_CURR, TARGET not 0 or 1, or a file that could not be read."""


def outcome_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(OUTCOME_SUFFIXES))


def read_outcome_file(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    missing = {KEY, TARGET} - set(frame.columns)
    if missing:
        raise ValueError(f"no column {sorted(missing)}")
    return frame[[KEY, TARGET]]


def read_outcomes(directory: Path) -> Outcomes:
    """Every outcome file of `directory` (absent or empty: none), unusable rows counted and left out."""
    frames, bad, paths = [], 0, outcome_files(Path(directory))
    for path in paths:
        try:
            frame = read_outcome_file(path)
        except (ValueError, OSError) as error:
            logger.warning("%s: not an outcome file (%s): skipped; it needs columns SK_ID_CURR and TARGET (0 or 1)",
                           path, str(error)[:200])
            bad += 1
            continue
        key = pd.to_numeric(frame[KEY], errors="coerce")
        target = pd.to_numeric(frame[TARGET], errors="coerce")
        usable = key.notna() & (key == key.round()) & key.between(0, 2**53) & target.isin([0, 1])
        bad += int((~usable).sum())
        frames.append(pd.DataFrame({KEY: key[usable].astype("int64"), TARGET: target[usable].astype("int8")}))
    joined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({KEY: [], TARGET: []})
    joined = joined.drop_duplicates(KEY, keep="last").astype({KEY: "int64", TARGET: "int8"})
    logger.info("outcomes %s: %d applicant(s) in %d file(s), %d row(s) left out", directory, len(joined),
                len(paths), bad)
    return Outcomes(joined.reset_index(drop=True), len(paths), bad)


def last_scores(production: Path) -> pd.DataFrame:
    """Each identified applicant's last production score: SK_ID_CURR, ts (UTC), probability, refused (bool)."""
    log = read_production_log(production, columns=LOG_COLUMNS)
    frame = log.applicants
    frame = frame.assign(ts=pd.to_datetime(frame["ts"].where(frame["ts"].map(type).eq(str)), utc=True,
                                           errors="coerce", format="ISO8601"),
                         probability=pd.to_numeric(frame["probability"], errors="coerce").astype("float64"))
    key = pd.to_numeric(frame[KEY], errors="coerce")
    ok = (key.between(0, 2**53) & (key == key.round()) & frame["probability"].between(0, 1) & frame["ts"].notna())
    frame = frame[ok].sort_values("ts", kind="stable").drop_duplicates(KEY, keep="last")
    return pd.DataFrame({KEY: frame[KEY].astype("int64").to_numpy(), "ts": frame["ts"].to_numpy(),
                         "probability": frame["probability"].to_numpy(dtype="float64"),
                         "refused": (frame["decision"] == "refused").to_numpy()})


def joined(scores: pd.DataFrame, outcomes: pd.DataFrame, period: str) -> pd.DataFrame:
    """Scored applicants with an outcome, with their scoring period's first day (UTC, ISO)."""
    frame = scores.merge(outcomes, on=KEY, how="inner", validate="one_to_one")
    naive = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True)).tz_localize(None)
    starts = naive.to_period(FREQUENCIES[period]).start_time
    return frame.assign(period=[t.date().isoformat() for t in starts])


def measure(frame: pd.DataFrame, cost: CostSettings, p: PerformanceSettings) -> dict[str, Any]:
    """AUC, business cost, approval rate and calibration of these applicants, each with its bootstrap interval."""
    y = frame[TARGET].to_numpy(dtype="float64")
    score = frame["probability"].to_numpy(dtype="float64")
    refused = frame["refused"].to_numpy(dtype=bool)
    per_applicant = applicant_costs(y, refused, cost)
    out: dict[str, Any] = {"n": len(frame), "defaults": int(y.sum())}
    if len(frame) < p.min_outcomes or y.min() == y.max():
        return out
    args = (p.bootstrap, p.confidence, p.seed)
    calibration = intervals.bootstrap(lambda w: (w @ y) / (w @ score), len(y), p.bootstrap, p.seed)
    return {**out,
            "auc": intervals.auc_interval(y, score, *args).rounded(),
            "business_cost": intervals.mean_interval(per_applicant, *args).rounded(),
            "approval_rate": intervals.mean_interval((~refused).astype("float64"), *args).rounded(),
            "default_rate": round(float(y.mean()), 5), "mean_probability": round(float(score.mean()), 5),
            "calibration": intervals.percentile_interval(float(y.sum() / score.sum()), calibration,
                                                         p.confidence).rounded()}


def judged(figures: Mapping[str, Any], training: Mapping[str, Any], p: PerformanceSettings) -> tuple[str, list[str]]:
    """The verdict on one set of figures and the reasons for it (see the module)."""
    if "auc" not in figures:
        return INSUFFICIENT, [f"{figures['n']} applicant(s) with an outcome, {figures.get('defaults', 0)} default(s): "
                              f"performance.min_outcomes = {p.min_outcomes} and both outcomes are needed"]
    auc, cost, calib = figures["auc"], figures["business_cost"], figures["calibration"]
    checks = []
    if training.get("auc") is not None and auc["high"] < training["auc"]:
        checks.append((training["auc"] - auc["value"] > p.auc_tolerance,
                       f"AUC {auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}] < training "
                       f"{training['auc']:.3f}"))
    if training.get("business_cost") is not None and cost["low"] > training["business_cost"]:
        checks.append(((cost["value"] - training["business_cost"]) / training["business_cost"] > p.cost_tolerance,
                       f"business cost {cost['value']:.3f} [{cost['low']:.3f}, {cost['high']:.3f}] > training "
                       f"{training['business_cost']:.3f}"))
    if not calib["low"] <= 1 <= calib["high"]:
        checks.append((abs(calib["value"] - 1) > p.calibration_tolerance,
                       f"observed / predicted default rate {calib['value']:.2f} [{calib['low']:.2f}, "
                       f"{calib['high']:.2f}], 1 at training"))
    if not checks:
        return "stable", []
    return ("retrain_recommended" if any(far for far, _ in checks) else "degraded"), [text for _, text in checks]


def worst(*verdicts: str) -> str:
    ranked = [v for v in verdicts if v in VERDICTS]
    return max(ranked, key=VERDICTS.index) if ranked else INSUFFICIENT


def training_figures(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The test-set figures of reports/metrics.json the realised ones are compared with."""
    return {name: metrics.get(name) for name in ("auc", "business_cost", "approval_rate", "default_rate",
                                                 "threshold")}


def build_report(frame: pd.DataFrame, metrics: Mapping[str, Any], cost: CostSettings, p: PerformanceSettings,
                 counts: Mapping[str, Any]) -> dict[str, Any]:
    """performance.json: the whole, each period, the verdict (worst of the whole and the latest period measured)."""
    training = training_figures(metrics)
    overall = measure(frame, cost, p)
    verdict, reasons = judged(overall, training, p)
    periods = []
    for period, rows in frame.groupby("period", sort=True):
        figures = measure(rows, cost, p)
        periods.append({"period": period, **figures, "verdict": judged(figures, training, p)[0]})
    measured = [row for row in periods if row["verdict"] != INSUFFICIENT]
    if measured and verdict != INSUFFICIENT:
        latest_verdict, latest_reasons = judged(measured[-1], training, p)
        if VERDICTS.index(latest_verdict) > VERDICTS.index(verdict):
            verdict, reasons = latest_verdict, [f"period {measured[-1]['period']}: {r}" for r in latest_reasons]
    return {"verdict": verdict, "reasons": reasons, "training": training, **counts, "overall": overall,
            "period": p.period, "min_outcomes": p.min_outcomes, "periods": periods}


def classification_html(frame: pd.DataFrame, threshold: float, path: Path) -> None:
    """Evidently's classification report of the served probabilities against the outcomes (its own threshold: the
    served one)."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    data = pd.DataFrame({TARGET: frame[TARGET].astype("int64"), "probability": frame["probability"]})
    definition = DataDefinition(classification=[BinaryClassification(target=TARGET, prediction_probas="probability",
                                                                      pos_label=1)],
                                numerical_columns=["probability"], categorical_columns=[TARGET])
    snapshot = Report([ClassificationPreset(probas_threshold=threshold)]).run(
        current_data=Dataset.from_pandas(data, data_definition=definition), reference_data=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))


def period_figure(report: Mapping[str, Any], path: Path) -> None:
    """AUC, business cost and calibration by period with their intervals, the training figure dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in report["periods"] if "auc" in row]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    if not rows:
        fig.text(0.5, 0.5, f"no period with {report.get('min_outcomes', 'enough')} outcomes yet", ha="center")
        for ax in axes:
            ax.axis("off")
    for ax, (name, label, reference) in zip(axes, (
            ("auc", "AUC", report["training"].get("auc")),
            ("business_cost", "business cost per applicant", report["training"].get("business_cost")),
            ("calibration", "observed / predicted default rate", 1.0))):
        values = np.array([[r[name]["value"], r[name]["low"], r[name]["high"]] for r in rows]).reshape(-1, 3)
        x = np.arange(len(rows))
        ax.errorbar(x, values[:, 0], yerr=[values[:, 0] - values[:, 1], values[:, 2] - values[:, 0]], fmt="o",
                    color="#1f4e79", capsize=3)
        if reference is not None:
            ax.axhline(reference, color="#7f7f7f", linestyle="--", label="training")
        ax.set_xticks(x, [r["period"] for r in rows], rotation=30, fontsize=8)
        ax.set_title(label, fontsize=10)
    fig.suptitle(f"verdict: {report['verdict']}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
