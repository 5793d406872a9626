"""A short model card in Markdown, written from the run's own numbers."""
from __future__ import annotations

from typing import Any

import pandas as pd

from scoring.settings import Settings


def render(metrics: dict[str, Any], comparison: dict[str, Any], threshold: dict[str, Any], fairness: pd.DataFrame,
           settings: Settings, importance: pd.Series) -> str:
    source = settings.data.source
    rows = [
        "# Model card: credit-scoring", "",
        f"**Model**: {comparison['chosen']} (calibrated: {settings.train.calibration}), chosen by "
        f"cross-validated AUC among {', '.join(comparison['models'])}; class imbalance: "
        f"{settings.train.imbalance} inside each fold.",
        f"**Data**: {source} ({'generated, see README' if source == 'synthetic' else 'Kaggle Home Credit'}); "
        f"holdout of {metrics['n']:,} applicants ({settings.split.holdout_fraction:.0%} of the labelled ones), "
        f"default rate {metrics['default_rate']:.2%}.",
        f"**Decision**: refuse when the probability of default is at least {metrics['threshold']:.3f}; the threshold "
        f"minimises the business cost with a missed default costing {threshold['cost_fn']:g} and a refused good "
        f"client {threshold['cost_fp']:g}, on out-of-fold probabilities.", "",
        "## Holdout metrics", "", "| metric | value |", "| --- | ---: |",
    ]
    for key in ("auc", "oracle_auc", "pr_auc", "brier", "business_cost", "business_cost_at_0_5", "approval_rate"):
        if key in metrics:
            rows.append(f"| {key} | {metrics[key]:.4f} |")
    c = metrics["confusion"]
    rows += ["", f"Confusion at the threshold: {c['tp']} defaults refused, {c['fn']} granted; {c['fp']} good clients "
             f"refused, {c['tn']} granted.", "", "## Model comparison (cross-validated)", "",
             "| model | CV AUC | lowest out-of-fold cost | best parameters |", "| --- | ---: | ---: | --- |"]
    for name, r in comparison["models"].items():
        model_cost = threshold.get("models_min_cost", {}).get(name, float("nan"))
        rows.append(f"| {name} | {r['cv_auc']:.4f} ± {r['cv_auc_std']:.4f} | {model_cost:.4f} | "
                    f"{r['best_params']} |")
    rows += ["", "## What drives the score", "", "Mean absolute SHAP contribution, top 10: " +
             ", ".join(f"{k} ({v:.3g})" for k, v in importance.head(10).items()) + ".", "",
             "## Fairness check", "",
             "Approval rate, default rate, good clients refused and defaulters granted, by group:", "",
             fairness.to_markdown(index=False), "",
             "## Limits", "",
             "- Trained on " + ("synthetic data calibrated on real rows: figures describe the generator, not real "
                                "clients." if source == "synthetic" else "Kaggle's historical applications."),
             "- Probabilities are calibrated on out-of-fold scores of the training applicants; re-check calibration "
             "when the population drifts (see the drift report).",
             "- CODE_GENDER and age are model inputs; the gaps above must be reviewed before use in production.",
             "- Explanations are SHAP values of the uncalibrated model (same ranking as the calibrated probability)."]
    return "\n".join(rows) + "\n"
