"""Local explanations for a few applicants: SHAP waterfalls and LIME, saved where people can look at them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.model import explain, plots
from scoring.model.training import CalibratedScorer


def pick_applicants(proba: pd.Series, threshold: float) -> dict[str, int]:
    """Three telling cases: the riskiest refusal, the closest call, the safest approval."""
    return {
        "riskiest": int(proba.idxmax()),
        "borderline": int((proba - threshold).abs().idxmin()),
        "safest": int(proba.idxmin()),
    }


def shap_waterfalls(model: CalibratedScorer, X: pd.DataFrame, chosen: dict[str, int], proba: pd.Series,
                    threshold: float, out: Path, background: pd.DataFrame) -> dict[str, dict]:
    rows = X.loc[list(chosen.values())]
    contribs, base = explain.contributions(model, rows, background)
    summary = {}
    for label, applicant in chosen.items():
        reasons = explain.top_reasons(contribs.loc[applicant], X.loc[applicant], k=10)
        decision = "refused" if proba[applicant] >= threshold else "granted"
        title = f"Applicant {applicant} ({label}): probability {proba[applicant]:.3f}, {decision}"
        score = base + float(contribs.loc[applicant].sum())
        plots.waterfall_figure(reasons, base, score, title, out / f"waterfall_{label}_{applicant}.png")
        summary[label] = {"SK_ID_CURR": applicant, "probability": round(float(proba[applicant]), 5),
                          "decision": decision, "reasons": [r.__dict__ for r in reasons]}
    (out / "local_explanations.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def lime_explanations(model: CalibratedScorer, X: pd.DataFrame, chosen: dict[str, int], background: pd.DataFrame,
                      out: Path, seed: int) -> None:
    """LIME on the model's encoded inputs: a second, model-agnostic view of the same decisions."""
    from lime.lime_tabular import LimeTabularExplainer

    train_t, names = explain.transformed(model, background)
    classifier = model.pipeline.named_steps["model"]
    explainer = LimeTabularExplainer(np.nan_to_num(train_t), feature_names=names,
                                     class_names=["repays", "defaults"], random_state=seed, discretize_continuous=True)
    rows_t, _ = explain.transformed(model, X.loc[list(chosen.values())])
    for (label, applicant), row in zip(chosen.items(), np.nan_to_num(rows_t)):
        explanation = explainer.explain_instance(row, classifier.predict_proba, num_features=10, num_samples=2000)
        plots.lime_figure(explanation.as_list(label=1), f"LIME, applicant {applicant} ({label})",
                          out / f"lime_{label}_{applicant}.png")
