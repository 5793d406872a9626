"""The real-data estimate of the model choice: repeated-CV AUC and cost, with intervals, of every candidate on the
visible real applicants (Kaggle's application tables in ../shared, application table alone, as the unseen ones come).

    .venv/bin/python -m tools.model_study [--shared ../shared/data/home-credit] [--out reports/model_study.json]
        [--models xgboost lightgbm] [--n-jobs 1] [--search thorough]

The rows: application_train.csv, coherent10k/ and idrange_100002_100999/ of the shared folder, one row per
SK_ID_CURR. The features: `features.build_features` with an empty history (no history rows). The training code,
the selection rule and the threshold stage's figures are the pipeline's own (params.yaml `train`, `cost`,
`threshold`); derived figures only are written, never rows.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring import features
from scoring.model import training
from scoring.settings import configure_logging, load_settings
from stages.threshold import threshold_report

logger = logging.getLogger("tools.model_study")
ROOT = Path(__file__).resolve().parents[1]
PARTS = ("application_train.csv", "coherent10k/application_train.csv.gz",
         "idrange_100002_100999/application_train.csv.gz")


def visible_applicants(shared: Path) -> pd.DataFrame:
    """The visible labelled real applicants, once each."""
    found = [shared / part for part in PARTS if (shared / part).exists()]
    if not found:
        raise FileNotFoundError(f"no application table under {shared}: pass --shared <folder of Kaggle's files>")
    apps = pd.concat([pd.read_csv(path) for path in found], ignore_index=True)
    return apps.drop_duplicates(features.KEY).reset_index(drop=True)


def study(apps: pd.DataFrame, models: list[str] | None, n_jobs: int | None, **changes: Any) -> dict[str, Any]:
    """Every candidate tuned and estimated as train does (params.yaml's `train`, with `changes`); the chosen one's
    calibrated pooled out-of-fold cost as the threshold stage computes it."""
    settings = load_settings(ROOT / "params.yaml")
    p = replace(settings.train, **({"models": tuple(models)} if models else {}),
                **({"n_jobs": n_jobs} if n_jobs else {}), **changes)
    X = features.build_features(apps, pd.DataFrame(index=pd.Index([], name=features.KEY)))
    X = X.drop(columns=[c for c in X.columns if c == "TARGET"])
    y = apps.set_index(features.KEY)["TARGET"].reindex(X.index).to_numpy()
    candidates = training.compare_models(X, y, p)
    chosen = training.choose(candidates, p)
    blend = training.rank_blend(candidates, y, p)
    calibrator = training.fit_calibrator(chosen.oof.ravel(), np.tile(y, p.oof_repeats), p.calibration)
    oof = training.out_of_fold_scores(candidates, y, p)
    oof["proba"] = training.calibrate(calibrator, chosen.oof.ravel())
    return {"rows": len(y), "default_rate": round(float(y.mean()), 5),
            "train": training.comparison_table(candidates, chosen, p, blend),
            "threshold": threshold_report(oof, settings.cost, settings.threshold)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/home-credit"))
    parser.add_argument("--out", type=Path, default=Path("reports/model_study.json"))
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--search", choices=("quick", "thorough"), default=None)
    args = parser.parse_args()
    configure_logging()
    result = study(visible_applicants(args.shared), args.models, args.n_jobs,
                   **({"search": args.search} if args.search else {}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    chosen = result["train"]["chosen"]
    logger.info("chosen %s: CV AUC %s; pooled out-of-fold cost %s -> %s", chosen,
                result["train"]["models"][chosen]["cv_auc"], result["threshold"]["oof_business_cost_interval"],
                args.out)


if __name__ == "__main__":
    main()
