"""The serve lane: the scoring engine, the service and the HTTP layer in process, on the tiny fitted model of
tests/conftest.py (no `dvc repro`), checked against references computed another way."""
from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost

from scoring.model.explain import source_columns
from scoring.model.training import CalibratedScorer


def reference_contributions(model: CalibratedScorer, X: pd.DataFrame) -> pd.DataFrame:
    """SHAP values per input field by the libraries' own code (XGBoost's pred_contribs, shap's TreeExplainer, the
    linear formula on sklearn's encoded inputs), summed per field: what the engine's explainers must equal."""
    prep, classifier = model.pipeline.named_steps["prep"], model.pipeline.named_steps["model"]
    Xt = np.asarray(prep.transform(X), dtype=float)
    if model.model_name == "xgboost":
        values = classifier.get_booster().predict(xgboost.DMatrix(Xt), pred_contribs=True)[:, :-1]
    elif model.model_name == "logreg":
        values = (Xt - model.reference_) * classifier.coef_[0]
    else:
        import shap

        values = np.asarray(shap.TreeExplainer(classifier).shap_values(Xt, check_additivity=False))[..., 1]
    columns = source_columns(list(prep.get_feature_names_out()), list(X.columns))
    per_column = pd.DataFrame(values, index=X.index, columns=columns)
    return per_column.T.groupby(level=0, sort=False).sum().T
