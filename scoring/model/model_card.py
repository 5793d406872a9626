"""A short model card in Markdown, written from the run's own numbers."""
from __future__ import annotations

from typing import Any

import pandas as pd

from scoring.settings import Settings


def render(metrics: dict[str, Any], comparison: dict[str, Any], threshold: dict[str, Any], fairness: pd.DataFrame,
           settings: Settings, importance: pd.Series, fairness_verdict: str = "") -> str:
    source = settings.data.source
    rows = [
        "# Model card: credit-scoring", "",
        f"**Model**: {comparison['chosen']} (calibrated: {settings.train.calibration}), chosen among "
        f"{', '.join(comparison['models'])} by {selection(comparison)}; class imbalance: "
        f"{settings.train.imbalance} inside each fold." + monotone(comparison) + release(comparison),
        f"**Data**: {source} ({'generated, see README' if source == 'synthetic' else 'Kaggle Home Credit'}); "
        f"holdout of {metrics['n']:,} applicants ({settings.split.holdout_fraction:.0%} of the labelled ones), "
        f"default rate {metrics['default_rate']:.2%}.",
        f"**Decision**: refuse when the probability of default is at least {metrics['threshold']:.3f}; the threshold "
        f"minimises the business cost with a missed default costing {threshold['cost_fn']:g} and a refused good "
        f"client {threshold['cost_fp']:g}, on out-of-fold probabilities.", "",
        *metric_rows(metrics),
    ]
    c = metrics["confusion"]
    rows += ["", f"Confusion at the threshold: {c['tp']} defaults refused, {c['fn']} granted; {c['fp']} good clients "
             f"refused, {c['tn']} granted.", "", *comparison_rows(comparison, threshold)]
    rows += ["", "## What drives the score", "", "Mean absolute SHAP contribution, top 10: " +
             ", ".join(f"{k} ({v:.3g})" for k, v in importance.head(10).items()) + ".", "",
             "## Fairness check", "",
             *([f"**Fairness gate {fairness_verdict}** (reports/fairness.json, thresholds in params.yaml "
                f"`fairness`; a failed gate keeps the model from becoming champion).", ""] if fairness_verdict else []),
             "By group: approval rate and its ratio to the highest group's (four-fifths rule), share of good clients "
             "refused and its gap to the lowest group's, default rate, calibration gap (mean probability less "
             "default rate):", "",
             fairness.to_markdown(index=False), "",
             "## Limits", "",
             "- Trained on " + ("synthetic data calibrated on real rows: figures describe the generator, not real "
                                "clients." if source == "synthetic" else "Kaggle's historical applications."),
             "- Probabilities are calibrated on out-of-fold scores of the training applicants; re-check calibration "
             "when the population drifts (see the drift report).",
             f"- Protected fields never used as inputs: {', '.join(settings.protected.fields) or 'none'}; age is an "
             "input (an empirically derived risk factor) and is measured by band above.",
             "- Explanations are SHAP values of the uncalibrated model (same ranking as the calibrated probability)."]
    return "\n".join(rows) + "\n"


def released_rows(comparison: dict[str, Any]) -> tuple[int, int] | None:
    """(served, validated) applicant counts when the served model is not the one the holdout measured (train.json
    `release`, `train.release: all_labelled`), else None."""
    fitted = comparison.get("release")
    if not fitted or fitted["served_rows"] == fitted["validated_rows"]:
        return None
    return fitted["served_rows"], fitted["validated_rows"]


def release(comparison: dict[str, Any]) -> str:
    if not (rows := released_rows(comparison)):
        return ""
    return (f" Served: the same procedure (configuration, trees, calibrator, threshold) refitted on all "
            f"{rows[0]:,} labelled applicants, holdout included (`train.release: all_labelled`); the "
            f"holdout figures below are those of the model fitted on the {rows[1]:,} others.")


def monotone(comparison: dict[str, Any]) -> str:
    decreasing = comparison.get("decreasing")
    return (f" Monotone: raising {', '.join(decreasing)} (the others held) never raises the risk."
            if decreasing else "")


def span(interval: dict[str, float] | None) -> str:
    return f"[{interval['low']:.4f}, {interval['high']:.4f}]" if interval else ""


def selection(comparison: dict[str, Any]) -> str:
    protocol = comparison.get("protocol")
    if not protocol:
        return "cross-validated AUC"
    return (f"{protocol['rule']} ({protocol['folds']} folds x {protocol['repeats']} repeats, paired differences "
            f"corrected for shared training rows)")


def metric_rows(metrics: dict[str, Any]) -> list[str]:
    """The holdout figures, with their bootstrap interval where evaluate computed one."""
    intervals = metrics.get("intervals", {})
    level = f"{intervals.get('confidence', 0.95):.0%} bootstrap interval"
    rows = ["## Holdout metrics", "", f"| metric | value | {level} |", "| --- | ---: | --- |"]
    for key in ("auc", "oracle_auc", "pr_auc", "brier", "business_cost", "business_cost_at_0_5", "approval_rate"):
        if key in metrics:
            rows.append(f"| {key} | {metrics[key]:.4f} | {span(intervals.get(key))} |")
    return rows


def comparison_rows(comparison: dict[str, Any], threshold: dict[str, Any]) -> list[str]:
    """Each candidate's repeated-CV AUC, its difference with the best (corrected standard error) and its lowest
    out-of-fold cost with its interval; then the blend's verdict."""
    rows = ["## Model comparison (repeated cross-validation)", "",
            "| model | CV AUC | vs best AUC (± se) | lowest out-of-fold cost | best parameters |",
            "| --- | ---: | ---: | ---: | --- |"]
    costs = threshold.get("models_cost", {})
    for name, r in comparison["models"].items():
        versus = r.get("vs_best")
        diff = f"{versus['mean']:+.4f} ± {versus['se']:.4f}" if versus else ""
        own = costs.get(name, {}).get("min_cost")
        plain = threshold.get("models_min_cost", {}).get(name, float("nan"))
        cost = f"{own['value']:.4f} {span(own)}" if own else f"{plain:.4f}"
        rows.append(f"| {name}{' (kept)' if name == comparison['chosen'] else ''} | {r['cv_auc']:.4f} ± "
                    f"{r['cv_auc_std']:.4f} | {diff} | {cost} | {r['best_params']} |")
    blend = comparison.get("blend")
    if blend:
        verdict = "beyond the noise (not served)" if blend["beyond_noise"] else "within the noise: not kept"
        rows += ["", f"Rank blend of {' + '.join(blend['members'])}: {blend['gain']:+.4f} AUC "
                 f"(se {blend['se']:.4f}) over the best alone, {verdict}."]
    return rows
