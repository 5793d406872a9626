"""The real-data estimate of the model choice: repeated-CV AUC and cost, with intervals, of every candidate on the
visible real applicants (Kaggle's application tables in ../shared, application table alone, as the unseen ones come).

    .venv/bin/python -m tools.model_study [--shared ../shared/data/home-credit] [--out reports/model_study.json]
        [--models xgboost lightgbm] [--n-jobs 1] [--search thorough]
    .venv/bin/python -m tools.model_study --histories [--out reports/history_gain.json] [--models xgboost]
    .venv/bin/python -m tools.model_study --peer [--models xgboost]
    .venv/bin/python -m tools.model_study --release [--models xgboost]
    .venv/bin/python -m tools.model_study --learning-curve [--target-auc 0.755] [--models xgboost]

The fifth form is the learning curve (against_size): what more labelled applicants would add to the chosen model,
the AUC per doubling of the training rows, and, given a target, the rows at which the fitted line reaches it.

The fourth form measures `train.release: all_labelled` as the pipeline does it (against_release): in each outer fold,
the model fitted on the training rows less a holdout against the same procedure fitted on all of them.

The third form adds the plain peer (tools/peer.py: Kaggle's kernel "LightGBM with simple features", application part)
on the same repeated folds: its AUC and the chosen model's paired difference to it, with CODE_GENDER as the kernel
uses it and without (the project never uses it).

The second form measures what the history tables add: on coherent10k's 10,000 applicants with every row they have in
bureau, bureau_balance and credit_card_balance, each candidate with and without the history features on the same
repeated folds, and the paired difference of their fold AUCs (Nadeau-Bengio corrected standard error).

The rows: application_train.csv, coherent10k/ and idrange_100002_100999/ of the shared folder, one row per
SK_ID_CURR. The features: `features.build_features` with an empty history (no history rows), the
protected fields left out as featurize leaves them. The training code,
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
from joblib import delayed
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from scoring import features
from scoring.data.io import read_raw_table, to_storage_types
from scoring.model import training
from scoring.model.cost import business_cost, pick_threshold
from scoring.model.intervals import paired_difference
from scoring.model.plots import learning_curve_figure
from scoring.settings import configure_logging, load_settings
from stages.threshold import threshold_report
from tools.peer import peer_features, peer_fold_auc

logger = logging.getLogger("tools.model_study")
ROOT = Path(__file__).resolve().parents[1]
COHERENT = {"application_train": "coherent10k/application_train.csv.gz", "bureau": "coherent10k/bureau.csv.gz",
            "bureau_balance": "coherent10k/bureau_balance.csv.gz",
            "credit_card_balance": "coherent10k/credit_card_balance.csv.gz"}
"""The applicants whose history rows are all there (for the tables named), and those rows."""
PARTS = ("application_train.csv", "coherent10k/application_train.csv.gz",
         "idrange_100002_100999/application_train.csv.gz")


def visible_applicants(shared: Path) -> pd.DataFrame:
    """The visible labelled real applicants, once each."""
    found = [shared / part for part in PARTS if (shared / part).exists()]
    if not found:
        raise FileNotFoundError(f"no application table under {shared}: pass --shared <folder of Kaggle's files>")
    apps = pd.concat([pd.read_csv(path) for path in found], ignore_index=True)
    return apps.drop_duplicates(features.KEY).reset_index(drop=True)


def study(apps: pd.DataFrame, models: list[str] | None, n_jobs: int | None, peer: bool = False,
          release: bool = False, learning_curve: bool = False, target_auc: float | None = None, **changes: Any
          ) -> dict[str, Any]:
    """Every candidate tuned and estimated as train does (params.yaml's `train`, with `changes`); the chosen one's
    calibrated pooled out-of-fold cost as the threshold stage computes it; with `peer`, the plain peer on the same
    folds (`against_peer`); with `release`, the released model against the validated one (`against_release`); with
    `learning_curve`, the chosen model on shares of the training rows (`against_size`)."""
    settings, p = settings_with(models, n_jobs, **changes)
    X = features.build_features(apps, pd.DataFrame(index=pd.Index([], name=features.KEY)),
                                settings.protected.fields)
    y = apps.set_index(features.KEY)["TARGET"].reindex(X.index).to_numpy()
    candidates = training.compare_models(X, y, p)
    chosen = training.choose(candidates, p)
    blend = training.rank_blend(candidates, y, p)
    calibrator = training.fit_calibrator(chosen.oof.ravel(), np.tile(y, p.oof_repeats), p.calibration)
    oof = training.out_of_fold_scores(candidates, y, p)
    oof["proba"] = training.calibrate(calibrator, chosen.oof.ravel())
    result = {"rows": len(y), "default_rate": round(float(y.mean()), 5),
              "train": training.comparison_table(candidates, chosen, p, blend),
              "threshold": threshold_report(oof, settings.cost, settings.threshold)}
    if peer:
        result["peer"] = against_peer(apps.set_index(features.KEY).loc[X.index].reset_index(), y, chosen, p,
                                      settings.protected.fields)
    if release:
        result["release"] = against_release(X, y, chosen, settings, p)
    if learning_curve:
        result["learning_curve"] = against_size(X, y, chosen, p, target_auc)
    return result


def against_peer(apps: pd.DataFrame, y: np.ndarray, chosen: training.Candidate, p: Any,
                 protected: tuple[str, ...]) -> dict[str, Any]:
    """The plain peer's repeated-CV AUC on the chosen candidate's folds (rows in the order of `y`), with the
    protected fields (as Kaggle's kernel) and without, and the chosen model's paired gain over each."""
    splits = list(training.folds_of(p).split(np.zeros(len(y)), y))
    out = {}
    for name, drop in (("with_protected", ()), ("without_protected", tuple(protected))):
        aucs = peer_fold_auc(peer_features(apps, drop), y, splits, p.seed, p.n_jobs)
        d = paired_difference(chosen.fold_auc, aucs, 1 / p.oof_folds)
        out[name] = {"cv_auc": round(float(aucs.mean()), 5), "chosen_gain": round(d.mean, 5), "se": round(d.se, 5),
                     "interval_95": interval_95(d),
                     "verdict": verdict(d, p.noise_se)}
        logger.info("peer %s: AUC %.4f; %s's gain over it %+.4f (se %.4f), %s", name, aucs.mean(), chosen.model,
                    d.mean, d.se, out[name]["verdict"])
    return out


def against_release(X: pd.DataFrame, y: np.ndarray, chosen: training.Candidate, settings: Any, p: Any
                    ) -> dict[str, Any]:
    """What `train.release: all_labelled` is worth, as the pipeline does it, on the chosen candidate's folds: in each
    outer fold, the training rows split as featurize splits them (split.holdout_fraction); a calibrator and the
    threshold from `oof_folds` out-of-fold scores of the split's fit rows; the validated model fitted on those rows,
    the released one on those and the split's holdout, both through that calibrator and threshold, scored on the
    outer fold. The paired differences of their AUC and cost, and of their mean probability (calibration carried
    over)."""
    splits = list(training.folds_of(p).split(np.zeros(len(y)), y))
    one = training.single_threaded(chosen.estimator, p)
    per_fold = np.array(list(training.workers(p)(
        delayed(validated_and_released)(one, X, y, train, test, settings, p) for train, test in splits)))
    out = {}
    for i, name in enumerate(("auc", "business_cost", "mean_probability")):
        d = paired_difference(per_fold[:, 3 + i], per_fold[:, i], 1 / p.oof_folds)
        out[name] = {"validated": round(float(per_fold[:, i].mean()), 5),
                     "released": round(float(per_fold[:, 3 + i].mean()), 5),
                     "difference": round(d.mean, 5), "se": round(d.se, 5), "interval_95": interval_95(d)}
        logger.info("release: %s %.4f -> %.4f, %+.4f (se %.4f)", name, per_fold[:, i].mean(),
                    per_fold[:, 3 + i].mean(), d.mean, d.se)
    return out


def validated_and_released(pipe: Any, X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                           settings: Any, p: Any) -> list[float]:
    """[AUC, cost, mean probability] on `test` of the validated model, then of the released one (against_release)."""
    fit, holdout = features.holdout_split(train, y[train], settings.split.holdout_fraction, settings.split.seed)
    raw = np.zeros(len(fit))
    for inner, scored in StratifiedKFold(p.oof_folds, shuffle=True, random_state=p.seed).split(fit, y[fit]):
        raw[scored] = training.fit_fold(pipe, X, y, fit[inner], fit[scored])[0]
    calibrator = training.fit_calibrator(raw, y[fit], p.calibration)
    threshold, _ = pick_threshold(y[fit], training.calibrate(calibrator, raw), settings.cost)
    out = []
    for rows in (fit, np.concatenate([fit, holdout])):
        proba = training.calibrate(calibrator, training.fit_fold(pipe, X, y, rows, test)[0])
        out += [roc_auc_score(y[test], proba), business_cost(y[test], proba >= threshold, settings.cost),
                float(proba.mean())]
    return out


SIZES = (0.25, 0.5, 0.75, 1.0)
"""The learning curve's training sizes: shares of each outer fold's training rows."""


def against_size(X: pd.DataFrame, y: np.ndarray, chosen: training.Candidate, p: Any,
                 target_auc: float | None = None) -> dict[str, Any]:
    """The learning curve on the chosen candidate's folds: its configuration fitted on SIZES of each outer fold's
    training rows (a seeded random share; a boosted model's tree count early-stopped afresh at each size) and scored
    on the whole outer fold; each size's AUC with its paired difference to all the rows, and the AUC a doubling of
    the rows adds (least squares of the mean AUC on log2 rows). With `target_auc`, the rows at which that line
    reaches it: an extrapolation, to be read as an order of magnitude."""
    splits = list(training.folds_of(p).split(np.zeros(len(y)), y))
    pipe = training.single_threaded(chosen.estimator, p)
    if "rounds" in pipe.named_steps["model"].get_params():
        pipe.set_params(model__rounds=None)
    per_fold = np.array(list(training.workers(p)(
        delayed(sized_fits)(pipe, X, y, train, test, p.seed + i) for i, (train, test) in enumerate(splits))))
    rows = [int(len(splits[0][0]) * share) for share in SIZES]
    mean = per_fold.mean(axis=0)
    per_doubling = float(np.polyfit(np.log2(rows), mean, 1)[0])
    sizes = []
    for j, share in enumerate(SIZES):
        d = paired_difference(per_fold[:, j], per_fold[:, -1], 1 / p.oof_folds)
        sizes.append({"share": share, "rows": rows[j], "cv_auc": round(float(mean[j]), 5),
                      "fold_sd": round(float(per_fold[:, j].std(ddof=1)), 5) if len(per_fold) > 1 else 0.0,
                      "against_all_rows": round(d.mean, 5), "se": round(d.se, 5)})
        logger.info("learning curve: %d rows, AUC %.4f (%+.4f, se %.4f)", rows[j], mean[j], d.mean, d.se)
    out: dict[str, Any] = {"model": chosen.model, "sizes": sizes, "auc_per_doubling": round(per_doubling, 5)}
    if target_auc is not None and per_doubling > 0:
        doublings = (target_auc - mean[-1]) / per_doubling
        out["projection"] = {"target_auc": target_auc, "doublings": round(float(doublings), 2),
                             "rows": int(rows[-1] * 2 ** max(doublings, 0.0))}
        logger.info("learning curve: %+.4f AUC per doubling; %.3f at about %d rows (extrapolated)", per_doubling,
                    target_auc, out["projection"]["rows"])
    return out


def sized_fits(pipe: Any, X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int
               ) -> list[float]:
    """The AUC on `test` of the pipeline fitted on each of SIZES of `train` (nested shares of one permutation)."""
    order = np.random.default_rng(seed).permutation(train)
    return [roc_auc_score(y[test], training.fit_fold(pipe, X, y, np.sort(order[:int(len(train) * share)]), test)[0])
            for share in SIZES]


def learning_curve_plot(curve: dict[str, Any], path: Path) -> Path:
    """The figure of `against_size`'s result."""
    sizes = curve["sizes"]
    return learning_curve_figure([size["rows"] for size in sizes], [size["cv_auc"] for size in sizes],
                                 [size["fold_sd"] for size in sizes], curve["auc_per_doubling"], path,
                                 (projection["target_auc"], projection["rows"])
                                 if (projection := curve.get("projection")) else None)


def interval_95(d: Any) -> list[float]:
    """A paired difference's normal 95% interval (mean ± 1.96 corrected SEs), rounded as the study writes it."""
    return [round(d.mean - 1.96 * d.se, 5), round(d.mean + 1.96 * d.se, 5)]


def verdict(d: Any, noise_se: float) -> str:
    """How a paired difference reads under the selection rule (train.noise_se corrected SEs)."""
    if d.t >= noise_se:
        return "better beyond noise"
    return "worse beyond noise" if d.t <= -noise_se else "within noise"


def settings_with(models: list[str] | None, n_jobs: int | None, **changes: Any) -> Any:
    settings = load_settings(ROOT / "params.yaml")
    return settings, replace(settings.train, **({"models": tuple(models)} if models else {}),
                             **({"n_jobs": n_jobs} if n_jobs else {}), **changes)


def coherent_tables(shared: Path) -> dict[str, pd.DataFrame]:
    """coherent10k's tables in the pipeline's storage types (as prepare writes them)."""
    tables = {}
    for table, relative in COHERENT.items():
        path = shared / relative
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: --histories needs coherent10k/ of the shared folder")
        tables[table] = to_storage_types(read_raw_table(path, table), table)
    return tables


def history_gain(shared: Path, models: list[str] | None, n_jobs: int | None, **changes: Any) -> dict[str, Any]:
    """Each candidate's repeated-CV AUC on coherent10k with and without the history features, and the paired
    gain with its 95% interval (the same folds: same rows, labels and seed)."""
    settings, p = settings_with(models or ["xgboost"], n_jobs, **changes)
    tables = coherent_tables(shared)
    apps = tables.pop("application_train")
    empty = pd.DataFrame(index=pd.Index([], name=features.KEY))
    protected = settings.protected.fields
    with_history = features.build_features(apps, features.history_features(tables), protected)
    application_only = features.build_features(apps, empty, protected)
    y = apps.set_index(features.KEY)["TARGET"].reindex(with_history.index).to_numpy()
    logger.info("coherent10k: %d applicants, %d features with histories, %d without", len(y),
                with_history.shape[1], application_only.shape[1])
    result: dict[str, Any] = {"rows": len(y), "default_rate": round(float(y.mean()), 5),
                              "features": {"with_history": with_history.shape[1],
                                           "application_only": application_only.shape[1]},
                              "protocol": {"folds": p.oof_folds, "repeats": p.oof_repeats}, "models": {}}
    for model in p.models:
        alone = training.tune_and_estimate(model, application_only, y, p)
        both = training.tune_and_estimate(model, with_history, y, p)
        d = paired_difference(both.fold_auc, alone.fold_auc, 1 / p.oof_folds)
        result["models"][model] = {
            "cv_auc_application_only": round(alone.auc, 5), "cv_auc_with_history": round(both.auc, 5),
            "gain": round(d.mean, 5), "se": round(d.se, 5),
            "interval_95": interval_95(d),
            "beyond_noise": bool(d.t >= p.noise_se)}
        logger.info("%s: history gain %+.4f AUC (se %.4f): %.4f -> %.4f", model, d.mean, d.se, alone.auc, both.auc)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/home-credit"))
    parser.add_argument("--out", type=Path, default=Path("reports/model_study.json"))
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--search", choices=("quick", "thorough"), default=None)
    parser.add_argument("--peer", action="store_true",
                        help="the plain peer (tools/peer.py) on the same folds, and the chosen model's gain over it")
    parser.add_argument("--release", action="store_true",
                        help="the released model (train.release: all_labelled) against the validated one")
    parser.add_argument("--learning-curve", action="store_true",
                        help="the chosen model's AUC on 1/4 to all of each fold's training rows, and a figure "
                             "(learning_curve.png beside --out)")
    parser.add_argument("--target-auc", type=float, default=None,
                        help="with --learning-curve: the rows at which the fitted curve reaches this AUC")
    parser.add_argument("--histories", action="store_true",
                        help="the history tables' gain on coherent10k (default out: reports/history_gain.json)")
    args = parser.parse_args()
    configure_logging()
    if args.histories:
        out = args.out if args.out != parser.get_default("out") else Path("reports/history_gain.json")
        gain = history_gain(args.shared, args.models, args.n_jobs, **({"search": args.search} if args.search else {}))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(gain, indent=1))
        logger.info("-> %s", out)
        return
    result = study(visible_applicants(args.shared), args.models, args.n_jobs, args.peer, args.release,
                   args.learning_curve, args.target_auc, **({"search": args.search} if args.search else {}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    if args.learning_curve:
        logger.info("-> %s", learning_curve_plot(result["learning_curve"], args.out.with_name("learning_curve.png")))
    chosen = result["train"]["chosen"]
    logger.info("chosen %s: CV AUC %s; pooled out-of-fold cost %s -> %s", chosen,
                result["train"]["models"][chosen]["cv_auc"], result["threshold"]["oof_business_cost_interval"],
                args.out)


if __name__ == "__main__":
    main()
