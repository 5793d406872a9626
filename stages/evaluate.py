"""DVC stage `evaluate`: holdout metrics, curves, explanations, model card; mirrored to MLflow."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from scoring.config import configure_logging, cost_params, load_params, paths_from
from scoring.model import evaluation, explain, plots, tracking
from scoring.model.cost import business_cost
from scoring.model.local_explanations import lime_explanations, pick_applicants, shap_waterfalls
from scoring.model.model_card import render

logger = logging.getLogger("stages.evaluate")


def oracle_auc(prepared: Path, holdout: pd.DataFrame) -> float | None:
    """AUC of the generator's true probabilities on the same applicants (synthetic data only)."""
    path = prepared / "oracle.parquet"
    if not path.exists():
        return None
    oracle = pd.read_parquet(path).set_index("SK_ID_CURR")["TRUE_PD"].reindex(holdout.index)
    return round(float(roc_auc_score(holdout["TARGET"], oracle)), 5)


def write_curves(y: np.ndarray, proba: np.ndarray, metrics: dict, threshold: float, params: dict, out: Path) -> None:
    curves = evaluation.curves(y, proba, cost_params(params))
    for name, frame in curves.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    evaluation.confusion_rows(y, proba >= threshold).to_csv(out / "confusion.csv", index=False)
    plots.roc_figure(curves["roc"], metrics["auc"], out / "roc.png")
    plots.precision_recall_figure(curves["precision_recall"], metrics["pr_auc"], metrics["default_rate"],
                                  out / "precision_recall.png")
    plots.calibration_figure(curves["calibration"], metrics["brier"], out / "calibration.png")
    plots.cost_curve_figure(curves["cost"], threshold, (metrics["business_cost"], metrics["business_cost_at_0_5"]),
                            out / "holdout_cost_curve.png")


def explain_model(model, X: pd.DataFrame, proba: pd.Series, threshold: float, seed: int, out: Path) -> pd.Series:
    sample = X.sample(min(len(X), 500), random_state=seed)
    contribs, _ = explain.contributions(model, sample, background=sample)
    importance = explain.global_importance(contribs)
    importance.rename("mean_abs_shap").to_csv(out / "shap_importance.csv", index_label="feature")
    plots.importance_figure(importance, out / "shap_importance.png")
    plots.shap_summary_figure(contribs, sample, out / "shap_summary.png")
    chosen = pick_applicants(proba, threshold)
    shap_waterfalls(model, X, chosen, proba, threshold, out, background=sample)
    lime_explanations(model, X, chosen, sample, out, seed)
    return importance


def main() -> None:
    configure_logging()
    params = load_params()
    paths, cost = paths_from(params), cost_params(params)
    model = joblib.load(paths.models / "model.joblib")
    threshold = json.loads((paths.reports / "threshold.json").read_text())
    holdout = pd.read_parquet(paths.features / "holdout.parquet")
    X, y = holdout.drop(columns="TARGET"), holdout["TARGET"].to_numpy()
    proba = pd.Series(model.predict_proba(X)[:, 1], index=X.index)
    metrics = evaluation.holdout_metrics(y, proba.to_numpy(), threshold["threshold"], cost)
    if (oracle := oracle_auc(paths.prepared, holdout)) is not None:
        metrics["oracle_auc"] = oracle
    out = paths.reports / "evaluate"
    out.mkdir(parents=True, exist_ok=True)
    write_curves(y, proba.to_numpy(), metrics, threshold["threshold"], params, out)
    importance = explain_model(model, X, proba, threshold["threshold"], params["split"]["seed"], out)
    fairness = evaluation.fairness(X, y, proba.to_numpy() >= threshold["threshold"])
    fairness.to_csv(out / "fairness.csv", index=False)
    comparison = json.loads((paths.reports / "train.json").read_text())
    (out / "model_card.md").write_text(render(metrics, comparison, threshold, fairness, params, importance))
    (paths.reports / "metrics.json").write_text(json.dumps(metrics, indent=1))
    logger.info("holdout: AUC %.4f, cost %.4f at %.3f (%.4f at 0.5)%s", metrics["auc"], metrics["business_cost"],
                metrics["threshold"], metrics["business_cost_at_0_5"],
                f", oracle AUC {oracle:.4f}" if oracle is not None else "")
    mirror_to_mlflow(params, metrics, model, X, y, paths)


def mirror_to_mlflow(params: dict, metrics: dict, model, X: pd.DataFrame, y: np.ndarray, paths) -> None:
    p = tracking.TrackingParams(**params.get("tracking", {}))
    if not p.enabled:
        return

    def cost_on_holdout(candidate, candidate_threshold: float) -> float:
        return business_cost(y, candidate.predict_proba(X)[:, 1] >= candidate_threshold, cost_params(params))

    artifacts = [paths.reports / "metrics.json", paths.reports / "train.json", paths.reports / "threshold.json",
                 paths.reports / "threshold", paths.reports / "evaluate", paths.reports / "validation.md"]
    tracking.log_run(p, params, metrics, model, X.head(5), artifacts, cost_on_holdout)


if __name__ == "__main__":
    main()
