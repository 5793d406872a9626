"""DVC stage `evaluate`: holdout metrics, curves, explanations, model card; mirrored to MLflow.

The holdout's figures (metrics, curves, fairness, the champion gate) are those of the model fitted without it
(`validated.joblib`); the explanations (SHAP, LIME) are the served model's (`model.joblib`: with `train.release:
all_labelled`, the same procedure refitted on every labelled applicant, whose decisions they explain)."""
from __future__ import annotations

import json
import logging
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from scoring.model import evaluation, explain, fairness, plots, tracking
from scoring.model.cost import business_cost
from scoring.model.local_explanations import lime_explanations, pick_applicants, shap_waterfalls
from scoring.model.model_card import render
from scoring.model.training import CalibratedScorer
from scoring.serving.engine import Scores, ScoringEngine
from scoring.serving.registered_model import VALIDATED, log_scorer, pyfunc_decisions
from scoring.settings import CostSettings, Paths, Settings, configure_logging, load_settings, read_params

logger = logging.getLogger("stages.evaluate")


def oracle_auc(paths: Paths, holdout: pd.DataFrame) -> float | None:
    """AUC of the generator's true probabilities on the same applicants (synthetic data only)."""
    if not paths.prepared_oracle.exists():
        return None
    oracle = pd.read_parquet(paths.prepared_oracle).set_index("SK_ID_CURR")["TRUE_PD"].reindex(holdout.index)
    return round(float(roc_auc_score(holdout["TARGET"], oracle)), 5)


def write_curves(y: np.ndarray, proba: np.ndarray, metrics: dict, threshold: float, cost: CostSettings,
                 paths: Paths) -> None:
    """The curves as CSV (dvc plots reads them: dvc.yaml `plots`) and as figures."""
    curves = evaluation.curves(y, proba, cost)
    for name, frame in curves.items():
        frame.to_csv(paths.evaluate_dir / f"{name}.csv", index=False)
    evaluation.confusion_rows(y, proba >= threshold).to_csv(paths.confusion_csv, index=False)
    plots.roc_figure(curves["roc"], metrics["auc"], paths.roc_png)
    plots.precision_recall_figure(curves["precision_recall"], metrics["pr_auc"], metrics["default_rate"],
                                  paths.precision_recall_png)
    plots.calibration_figure(curves["calibration"], metrics["brier"], paths.calibration_png)
    plots.cost_curve_figure(curves["cost"], threshold, (metrics["business_cost"], metrics["business_cost_at_0_5"]),
                            paths.holdout_cost_curve_png)


def holdout_applicants(paths: Paths) -> pd.DataFrame:
    """The holdout's raw applications (prepared application_train, TARGET included), in the holdout's order: the
    engine builds their features itself, as the service does."""
    ids = pd.read_parquet(paths.holdout_features, columns=["TARGET"]).index
    apps = pd.read_parquet(paths.prepared_table("application_train")).set_index("SK_ID_CURR")
    return apps.loc[ids].reset_index()


def explain_model(model: CalibratedScorer, scores: Scores, X: pd.DataFrame, threshold: float, settings: Settings
                  ) -> pd.Series:
    """Global importance and summary (SHAP), three local explanations (SHAP waterfalls, LIME)."""
    paths, out = settings.paths, settings.paths.evaluate_dir
    importance = explain.global_importance(scores.contribution_frame())
    importance.rename("mean_abs_shap").to_csv(paths.shap_importance, index_label="feature")
    plots.importance_figure(importance, paths.shap_importance_png)
    sample = X.sample(min(len(X), 500), random_state=settings.split.seed)
    plots.shap_summary_figure(scores.contribution_frame().loc[sample.index], sample, paths.shap_summary_png)
    proba = pd.Series(scores.probability, index=X.index)
    chosen = pick_applicants(proba, threshold)
    shap_waterfalls(local_cases(scores, chosen, settings.reasons.default), paths.local_explanations)
    lime_explanations(model, X, chosen, sample, out, settings.split.seed)
    return importance


def local_cases(scores: Scores, chosen: dict[str, int], k: int) -> dict[str, dict[str, Any]]:
    """What the service would answer for each chosen applicant, with the SHAP base value for the waterfall."""
    position = {int(i): n for n, i in enumerate(scores.ids)}
    rows = [position[applicant] for applicant in chosen.values()]
    records = scores.reasons(k).records()
    base = scores.base_values
    return {label: {"SK_ID_CURR": applicant, "probability": round(float(scores.probability[i]), 5),
                    "decision": str(scores.decisions[i]), "base": float(base[i]), "raw": float(scores.raw[i]),
                    "reasons": records[i]}
            for (label, applicant), i in zip(chosen.items(), rows)}


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, cost = settings.paths, settings.cost
    measured, served = joblib.load(paths.validated_model), joblib.load(paths.model)
    threshold = json.loads(paths.threshold_json.read_text())
    apps, history = holdout_applicants(paths), pd.read_parquet(paths.history)
    refitted = settings.train.release == "all_labelled"
    logger.info("scoring %s holdout applicants with the %s model fitted without them%s...", f"{len(apps):,}",
                measured.model_name, "" if refitted else " (the served one), with exact SHAP")
    engine = ScoringEngine(measured, threshold["threshold"], history)
    scores = engine.score_table(apps, explain=not refitted)
    X, y, proba = scores.feature_frame(engine.columns), apps["TARGET"].to_numpy(), scores.probability
    metrics = evaluation.holdout_metrics(y, proba, threshold["threshold"], cost, settings.evaluate)
    if (oracle := oracle_auc(paths, apps.set_index("SK_ID_CURR"))) is not None:
        metrics["oracle_auc"] = oracle
    paths.evaluate_dir.mkdir(parents=True, exist_ok=True)
    write_curves(y, proba, metrics, threshold["threshold"], cost, paths)
    logger.info("curves written; explaining: SHAP importance and summary, waterfalls and LIME for three applicants...")
    explained = scores
    if refitted:
        logger.info("exact SHAP of the served model (refitted on every labelled applicant)...")
        explained = ScoringEngine(served, threshold["threshold"], history).score_table(apps, explain=True)
    importance = explain_model(served, explained, X, threshold["threshold"], settings)
    gate = fairness_gate(apps, proba, scores.refused, settings)
    comparison = json.loads(paths.train_report.read_text())
    paths.model_card.write_text(render(metrics, comparison, threshold, fairness.table(gate), settings, importance,
                                       gate["summary"]))
    paths.metrics_json.write_text(json.dumps(metrics, indent=1))
    logger.info("holdout: AUC %.4f, cost %.4f at %.3f (%.4f at 0.5)%s", metrics["auc"], metrics["business_cost"],
                metrics["threshold"], metrics["business_cost_at_0_5"],
                f", oracle AUC {oracle:.4f}" if oracle is not None else "")
    logger.info("mirroring to MLflow and registering the scorer...")
    mirror_to_mlflow(settings, metrics, apps, served.model_name,
                     None if gate["passed"] else f"fairness gate {gate['summary']}")


def fairness_gate(apps: pd.DataFrame, proba: np.ndarray, refused: np.ndarray, settings: Settings) -> dict[str, Any]:
    """Approval, refused good clients and calibration by protected group and age band (reports/fairness.json, the
    table in the evaluate folder); a failed gate keeps the model from becoming champion."""
    groups = fairness.protected_groups(apps, settings.protected)
    gate = fairness.assess(groups, apps["TARGET"].to_numpy(), proba, refused, settings.fairness)
    settings.paths.fairness_json.write_text(json.dumps(gate, indent=1))
    fairness.table(gate).to_csv(settings.paths.fairness_csv, index=False)
    (logger.info if gate["passed"] else logger.warning)("fairness gate %s", gate["summary"])
    return gate


def mirror_to_mlflow(settings: Settings, metrics: dict, apps: pd.DataFrame, family: str,
                     blocked: str | None = None) -> None:
    """One MLflow run and a registered model that is the whole scorer (raw applications in, decisions out); the
    champion gate scores the new version and the champion through their registered models on these raw holdout
    applications (`apps`, TARGET included)."""
    if not settings.tracking.enabled:
        return
    paths, cost = settings.paths, settings.cost
    y = apps["TARGET"].to_numpy()

    def cost_of(model_uri: str) -> float:
        return business_cost(y, pyfunc_decisions(model_uri, apps), cost)

    def log_model():
        files = {"model": paths.model, "threshold": paths.threshold_json, "history": paths.history}
        if settings.train.release == "all_labelled":
            files[VALIDATED] = paths.validated_model   # what the gate measures (CreditScorer.measured_engine)
        return log_scorer(files, apps.head(5), settings.reasons.default, tracking.MODEL_NAME)

    artifacts = [paths.metrics_json, paths.train_report, paths.threshold_json, paths.threshold_dir,
                 paths.evaluate_dir, paths.validation_report]
    tracking.log_run(settings.tracking, read_params(), metrics, log_model, artifacts + [paths.fairness_json],
                     cost_of, {"model_family": family, "fairness_gate": "failed" if blocked else "passed"}, blocked)


if __name__ == "__main__":
    main()
