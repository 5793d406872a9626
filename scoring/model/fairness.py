"""The fairness gate: approval rates, refused good clients and calibration by protected group, with bootstrap
intervals, and whether any gated figure breaks params.yaml `fairness`.

Per attribute (each field of `protected.fields`, e.g. CODE_GENDER, and the age band from DAYS_BIRTH), per group:

- approval ratio: the group's approval rate over the highest group's (the four-fifths rule: at least 0.8);
- opportunity gap: the share of the group's good clients (TARGET = 0) who are refused, less the lowest group's
  share (equal opportunity: a good client's chance of a loan should not depend on the group);
- calibration gap: mean predicted probability less the observed default rate (a score that means the same risk
  in every group).

Intervals are percentile bootstrap intervals (`intervals.bootstrap`: every figure of every group from the same draws
of applicants). Groups smaller than `min_group_size` are reported but neither gated nor used as the reference. The
gate looks at the point figures of the measures `gated` names for each attribute: a lender answers for the
decisions made, not for the most favourable end of an interval; the intervals say how sure each figure is.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring import features
from scoring.model.intervals import bootstrap
from scoring.settings import FairnessSettings, ProtectedSettings

AGE_BAND = "age_band"
MEASURES = ("approval_ratio", "opportunity_gap", "calibration_gap")


def age_bands(days_birth: np.ndarray, bands: tuple[int, ...]) -> np.ndarray:
    """Each applicant's age band ('18-29', ..., '60-99') from Kaggle's DAYS_BIRTH (days before the application)."""
    years = features.years_before(np.asarray(days_birth, dtype=np.float64))
    labels = [f"{low}-{high - 1}" for low, high in zip(bands[:-1], bands[1:])]
    band = pd.Series(pd.cut(years, list(bands), right=False, labels=labels)).astype(object)
    return band.fillna("unknown").to_numpy()


def protected_groups(apps: pd.DataFrame, protected: ProtectedSettings) -> dict[str, np.ndarray]:
    """Per attribute, each applicant's group, from the raw applications (a missing value is its own group)."""
    missing = [f for f in (*protected.fields, "DAYS_BIRTH") if f not in apps.columns]
    if missing:
        raise KeyError(f"fairness needs {missing} in the raw applications (params.yaml protected.fields)")
    out = {name: apps[name].astype(object).fillna("missing").astype(str).to_numpy() for name in protected.fields}
    out[AGE_BAND] = age_bands(apps["DAYS_BIRTH"].to_numpy(), protected.age_bands)
    return out


@dataclass(frozen=True)
class Counts:
    """Per group (columns), weighted sums of the applicants under each draw's weights (rows)."""

    n: np.ndarray
    approved: np.ndarray
    good: np.ndarray
    good_refused: np.ndarray
    predicted: np.ndarray
    defaults: np.ndarray


def weighted_counts(weights: np.ndarray, indicator: np.ndarray, y: np.ndarray, proba: np.ndarray,
                    refused: np.ndarray) -> Counts:
    """The sums for every group at once: `indicator` is applicants x groups (0/1), `weights` draws x applicants."""
    good = 1.0 - y
    columns = np.stack([np.ones_like(y), 1.0 - refused, good, good * refused, proba, y], axis=1)
    sums = (weights @ (indicator[:, :, None] * columns[:, None, :]).reshape(len(y), -1)).reshape(
        len(weights), indicator.shape[1], columns.shape[1])
    return Counts(*(sums[:, :, j] for j in range(columns.shape[1])))


def figures(counts: Counts, reference: np.ndarray) -> dict[str, np.ndarray]:
    """Rates and the three gated measures per group (draws x groups); `reference` marks the groups large enough to
    be the best or lowest group."""
    with np.errstate(invalid="ignore", divide="ignore"):
        approval = counts.approved / counts.n
        refused_good = counts.good_refused / counts.good
        best = np.nanmax(np.where(reference, approval, np.nan), axis=1, keepdims=True)
        lowest = np.nanmin(np.where(reference, refused_good, np.nan), axis=1, keepdims=True)
        return {"approval_rate": approval, "approval_ratio": approval / best, "good_refused_share": refused_good,
                "opportunity_gap": refused_good - lowest, "default_rate": counts.defaults / counts.n,
                "mean_probability": counts.predicted / counts.n,
                "calibration_gap": (counts.predicted - counts.defaults) / counts.n}


def violated(measure: str, value: float, p: FairnessSettings) -> bool:
    if measure == "approval_ratio":
        return value < p.min_approval_ratio
    if measure == "opportunity_gap":
        return value > p.max_opportunity_gap
    return abs(value) > p.max_calibration_gap


def thresholds(p: FairnessSettings) -> dict[str, float]:
    return {"min_approval_ratio": p.min_approval_ratio, "max_opportunity_gap": p.max_opportunity_gap,
            "max_calibration_gap": p.max_calibration_gap, "min_group_size": p.min_group_size}


def attribute_report(name: str, groups: np.ndarray, y: np.ndarray, proba: np.ndarray, refused: np.ndarray,
                     p: FairnessSettings) -> dict[str, Any]:
    """One attribute's groups: figures with intervals, and the violations of the gated figures."""
    labels = sorted(set(groups.tolist()))
    indicator = (groups[:, None] == np.asarray(labels, dtype=object)[None, :]).astype(np.float64)
    sizes = indicator.sum(axis=0)
    reference = sizes >= p.min_group_size
    point = figures(weighted_counts(np.ones((1, len(y))), indicator, y, proba, refused), reference)
    names = list(point)

    def statistic(weights: np.ndarray) -> np.ndarray:
        drawn = figures(weighted_counts(weights, indicator, y, proba, refused), reference)
        return np.concatenate([drawn[key] for key in names], axis=1)

    draws = bootstrap(statistic, len(y), p.bootstrap, p.seed).reshape(-1, len(names), len(labels))
    tail = 100 * (1 - p.confidence) / 2
    with np.errstate(invalid="ignore"):
        low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
    rows, violations = [], []
    for g, label in enumerate(labels):
        row: dict[str, Any] = {"group": label, "n": int(sizes[g]), "gated": bool(reference[g])}
        for m, key in enumerate(names):
            row[key] = {"value": rounded(point[key][0, g]), "low": rounded(low[m, g]), "high": rounded(high[m, g])}
        rows.append(row)
        for measure in MEASURES:
            value = float(point[measure][0, g])
            if reference[g] and measure in p.gated.get(name, ()) and value == value and violated(measure, value, p):
                violations.append({"attribute": name, "group": label, "measure": measure, "value": rounded(value),
                                   "interval": [row[measure]["low"], row[measure]["high"]]})
    return {"gated": list(p.gated.get(name, ())), "groups": rows, "violations": violations}


def rounded(value: float) -> float | None:
    return None if value != value else round(float(value), 4)


def assess(groups: Mapping[str, np.ndarray], y: np.ndarray, proba: np.ndarray, refused: np.ndarray,
           p: FairnessSettings) -> dict[str, Any]:
    """The fairness report (reports/fairness.json): per attribute its groups, and the gate's verdict."""
    unknown = sorted({m for measures in p.gated.values() for m in measures} - set(MEASURES))
    if unknown:
        raise ValueError(f"params.yaml fairness.gated names unknown measure(s) {unknown}; known: {list(MEASURES)}")
    y = np.asarray(y, dtype=np.float64)
    proba = np.asarray(proba, dtype=np.float64)
    refused = np.asarray(refused, dtype=np.float64)
    attributes = {name: attribute_report(name, np.asarray(values, dtype=object), y, proba, refused, p)
                  for name, values in groups.items()}
    violations = [v for a in attributes.values() for v in a["violations"]]
    return {"passed": not violations, "thresholds": thresholds(p), "violations": violations,
            "summary": summary(violations), "attributes": attributes}


def summary(violations: list[dict[str, Any]]) -> str:
    """One line for the model card, the registry tag and the app."""
    if not violations:
        return "passed: no gated group breaks the fairness thresholds"
    worst = "; ".join(f"{v['attribute']} {v['group']}: {v['measure']} {v['value']}" for v in violations[:3])
    more = f" (and {len(violations) - 3} more)" if len(violations) > 3 else ""
    return f"failed: {worst}{more}"


def table(report: dict[str, Any]) -> pd.DataFrame:
    """The report as one row per group (the model card's table, the app's)."""
    rows = []
    for name, attribute in report["attributes"].items():
        for g in attribute["groups"]:
            rows.append({"attribute": name, "group": g["group"], "n": g["n"],
                         **{key: g[key]["value"] for key in ("approval_rate", "approval_ratio", "good_refused_share",
                                                             "opportunity_gap", "default_rate", "calibration_gap")},
                         "gated": ", ".join(attribute["gated"]) if g["gated"] else "too few"})
    return pd.DataFrame(rows)
