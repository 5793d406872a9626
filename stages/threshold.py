"""DVC stage `threshold`: the decision threshold minimising the business cost on out-of-fold probabilities.

The probabilities are the chosen model's calibrated out-of-fold scores of every repeat of the training CV, pooled:
the threshold does not hang on one split (its spread over the repeats is reported), and the cost at it comes with a
bootstrap interval drawn by applicant (an applicant's repeats stay together). With calibrated probabilities it should
sit near cost.fp / (cost.fp + cost.fn), the threshold of a perfectly calibrated model.

Also the lowest cost each candidate can reach on its own out-of-fold scores (whatever their scale), with its
interval and the paired difference with the chosen model: the business side of the model comparison (computed here,
not in train, so that a change of costs re-runs the threshold and what follows, not the training).
"""
from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from scoring.model import cost as business
from scoring.model.intervals import mean_interval
from scoring.model.plots import cost_curve_figure
from scoring.settings import CostSettings, IntervalSettings, configure_logging, load_settings

logger = logging.getLogger("stages.threshold")


def per_repeat_thresholds(oof: pd.DataFrame, cost: CostSettings) -> list[float]:
    return [business.pick_threshold(part["TARGET"].to_numpy(), part["proba"].to_numpy(), cost)[0]
            for _, part in oof.groupby("repeat")]


def candidates_costs(oof: pd.DataFrame, chosen: np.ndarray, cost: CostSettings, p: IntervalSettings
                     ) -> dict[str, Any]:
    """Each candidate's lowest cost on its pooled raw scores, its interval, and its difference with the chosen
    model's cost per applicant (interval below zero: that candidate is cheaper beyond the noise)."""
    y, groups, out = oof["TARGET"].to_numpy(), oof["row"].to_numpy(), {}
    for column in [c for c in oof.columns if c.startswith("raw_")]:
        scores = oof[column].to_numpy()
        threshold, _ = business.pick_threshold(y, scores, cost)
        costs = business.applicant_costs(y, scores >= threshold, cost)
        own = mean_interval(costs, p.bootstrap, p.confidence, p.seed, groups)
        versus = mean_interval(costs - chosen, p.bootstrap, p.confidence, p.seed, groups)
        out[column.removeprefix("raw_")] = {"min_cost": own.rounded(), "vs_chosen": versus.rounded(),
                                            "cheaper_beyond_noise": versus.high < 0}
    return out


def threshold_report(oof: pd.DataFrame, cost: CostSettings, p: IntervalSettings) -> dict[str, Any]:
    y, proba, groups = oof["TARGET"].to_numpy(), oof["proba"].to_numpy(), oof["row"].to_numpy()
    threshold, best = business.pick_threshold(y, proba, cost)
    chosen_costs = business.applicant_costs(y, proba >= threshold, cost)
    interval = mean_interval(chosen_costs, p.bootstrap, p.confidence, p.seed, groups)
    repeats = per_repeat_thresholds(oof, cost)
    models = candidates_costs(oof, chosen_costs, cost, p)
    return {
        "threshold": threshold, "cost_fn": cost.fn, "cost_fp": cost.fp,
        "calibrated_threshold": round(cost.fp / (cost.fp + cost.fn), 5),
        "threshold_by_repeat": repeats, "repeats": int(oof["repeat"].nunique()),
        "oof_business_cost": round(best, 5), "oof_business_cost_interval": interval.rounded(),
        "oof_business_cost_at_0_5": round(business.business_cost(y, proba >= 0.5, cost), 5),
        "oof_approval_rate": round(float((proba < threshold).mean()), 5),
        "models_min_cost": {name: figures["min_cost"]["value"] for name, figures in models.items()},
        "models_cost": models, "confidence": p.confidence,
    }


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, cost = settings.paths, settings.cost
    oof = pd.read_parquet(paths.oof)
    result = threshold_report(oof, cost, settings.threshold)
    paths.threshold_json.write_text(json.dumps(result, indent=1))
    paths.threshold_dir.mkdir(parents=True, exist_ok=True)
    curve = business.cost_curve(oof["TARGET"].to_numpy(), oof["proba"].to_numpy(), np.linspace(0, 1, 201), cost)
    curve.to_csv(paths.cost_curve_csv, index=False)
    cost_curve_figure(curve, result["threshold"], (result["oof_business_cost"], result["oof_business_cost_at_0_5"]),
                      paths.cost_curve_png)
    interval = result["oof_business_cost_interval"]
    logger.info("threshold %.3f (per repeat %s; calibrated ideal %.3f): cost %.4f [%.4f, %.4f] per applicant "
                "(at 0.5: %.4f), approval rate %.1f%%", result["threshold"], result["threshold_by_repeat"],
                result["calibrated_threshold"], result["oof_business_cost"], interval["low"], interval["high"],
                result["oof_business_cost_at_0_5"], 100 * result["oof_approval_rate"])
    for name, figures in result["models_cost"].items():
        if figures["cheaper_beyond_noise"]:
            logger.warning("%s reaches a lower cost than the chosen model beyond the noise (%s): consider "
                           "`train.model: %s`", name, figures["vs_chosen"], name)


if __name__ == "__main__":
    main()
