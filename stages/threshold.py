"""DVC stage `threshold`: the decision threshold minimising the business cost on out-of-fold probabilities.

Also the lowest cost each candidate model can reach on its own out-of-fold scores (whatever their scale), the
business side of the model comparison.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from scoring.model import cost as business
from scoring.model.plots import cost_curve_figure
from scoring.settings import configure_logging, load_settings

logger = logging.getLogger("stages.threshold")


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, cost = settings.paths, settings.cost
    oof = pd.read_parquet(paths.oof)
    y, proba = oof["TARGET"].to_numpy(), oof["proba"].to_numpy()
    threshold, best = business.pick_threshold(y, proba, cost)
    curve = business.cost_curve(y, proba, np.linspace(0, 1, 201), cost)
    result = {
        "threshold": threshold, "cost_fn": cost.fn, "cost_fp": cost.fp,
        "oof_business_cost": round(best, 5),
        "oof_business_cost_at_0_5": round(business.business_cost(y, proba >= 0.5, cost), 5),
        "oof_approval_rate": round(float((proba < threshold).mean()), 5),
        "models_min_cost": {
            column.removeprefix("raw_"): round(business.min_cost(y, oof[column].to_numpy(), cost), 5)
            for column in oof.columns if column.startswith("raw_")
        },
    }
    paths.threshold_json.write_text(json.dumps(result, indent=1))
    paths.threshold_dir.mkdir(parents=True, exist_ok=True)
    curve.to_csv(paths.cost_curve_csv, index=False)
    cost_curve_figure(curve, threshold, (best, result["oof_business_cost_at_0_5"]), paths.cost_curve_png)
    logger.info("threshold %.3f: cost %.4f per applicant (at 0.5: %.4f), approval rate %.1f%%", threshold, best,
                result["oof_business_cost_at_0_5"], 100 * result["oof_approval_rate"])


if __name__ == "__main__":
    main()
