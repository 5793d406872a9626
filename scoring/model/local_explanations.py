"""Local explanations for a few applicants: SHAP waterfalls (from the scoring engine's own reasons) and LIME, saved
where people can look at them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def shap_waterfalls(explained: dict[str, dict[str, Any]], summary: Path) -> None:
    """One waterfall per chosen applicant, beside `summary` (the JSON of them all): `explained[label]` holds
    SK_ID_CURR, probability, decision, base, raw score and reasons (the API's records)."""
    out = summary.parent
    for label, case in explained.items():
        title = (f"Applicant {case['SK_ID_CURR']} ({label}): probability {case['probability']:.3f}, "
                 f"{case['decision']}")
        steps = [(f"{reason['code']} {reason['text']}", reason["contribution"]) for reason in case["reasons"]]
        plots.waterfall_figure(steps, case["base"], case["raw"], title,
                               out / f"waterfall_{label}_{case['SK_ID_CURR']}.png")
    summary.write_text(json.dumps(explained, indent=1, default=str))


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
