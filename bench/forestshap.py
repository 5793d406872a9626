"""Benchmark: exact SHAP values of the project's random forest, `ForestShap` against shap's TreeExplainer.

    python bench/forestshap.py                      # depths 8 and 14, 200 trees, numba's thread count
    python bench/forestshap.py --depths 8 10 12 14 --threads 1 --batches 1 64 1000

Fits RandomForestClassifier(n_estimators=200, min_samples_leaf=20, class_weight='balanced_subsample') on generated
data shaped like the project's (16,000 x 200, ~8% positives, 5% missing values), then logs: the tree sizes, the build
and first-call (numba compile) times, the memory of the precomputed arrays, rows/s for each batch size (best of a few
runs; wall clock, and rows per CPU-second to show when other processes share the cores), shap's rows/s on a small
batch and the largest difference from shap's values. Explanation cost grows linearly with the trees: the largest
forest meeting a target rate is trees x measured rate / target.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numba
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.serving.forestshap import ForestShap

logger = logging.getLogger("bench.forestshap")
TARGET_ROWS_PER_S = 5000


def generated(rows: int, columns: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=rows, n_features=columns, n_informative=40, n_redundant=40, weights=[0.92],
                               flip_y=0.03, random_state=seed)
    X[np.random.default_rng(seed).random(X.shape) < 0.05] = np.nan
    return X, y


def timed(explain, X: np.ndarray, repeats: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run) of explain(X)."""
    best = (np.inf, np.inf)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        explain(X)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def bench_depth(depth: int, X: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=args.trees, min_samples_leaf=20, max_depth=depth,
                                    class_weight="balanced_subsample", n_jobs=-1, random_state=0).fit(X, y)
    nodes = [e.tree_.node_count for e in forest.estimators_]
    logger.info("depth %d: fitted in %.0f s, %.0f nodes per tree (max %d), %.0f leaves", depth,
                time.perf_counter() - started, np.mean(nodes), max(nodes),
                np.mean([e.tree_.n_leaves for e in forest.estimators_]))
    started = time.perf_counter()
    engine = ForestShap.from_forest(forest)
    built = time.perf_counter() - started
    memory = sum(array.nbytes for array in (*engine.nodes, *engine.quadrature))
    wall, _ = timed(lambda rows: engine.contributions(rows, args.threads), X[:1], 1)
    logger.info("depth %d: built in %.2f s, %.1f MB of arrays, %d quadrature points; first call %.2f s (compile)",
                depth, built, memory / 1e6, engine.quadrature.points.size, wall)
    rows = X[np.random.default_rng(1).integers(0, len(X), max(args.batches))]
    for batch in args.batches:
        wall, cpu = timed(lambda part: engine.contributions(part, args.threads), rows[:batch],
                          5 if batch < 1000 else 3 if batch < 10_000 else 1)
        verdict = "meets" if batch / wall >= TARGET_ROWS_PER_S else "below"
        logger.info("depth %d: batch %6d  %8.0f rows/s  (%7.2f ms; %.0f rows per CPU-second) %s %d rows/s", depth,
                    batch, batch / wall, wall * 1e3, batch / max(cpu, 1e-9), verdict, TARGET_ROWS_PER_S)
    compare_with_shap(forest, engine, rows[:args.shap_rows], depth)


def compare_with_shap(forest: RandomForestClassifier, engine: ForestShap, rows: np.ndarray, depth: int) -> None:
    import shap

    explainer = shap.TreeExplainer(forest)
    wall, _ = timed(lambda part: explainer.shap_values(part, check_additivity=False), rows, 1)
    reference = np.asarray(explainer.shap_values(rows, check_additivity=False))[..., 1]
    ours = engine.contributions(rows)
    additivity = engine.expected_value + ours.sum(axis=1) - forest.predict_proba(rows)[:, 1]
    logger.info("depth %d: shap TreeExplainer %.0f rows/s on %d rows; max |ForestShap - shap| = %.1e, "
                "max |base + sum - predict_proba| = %.1e", depth, len(rows) / wall, len(rows),
                np.abs(ours - reference).max(), np.abs(additivity).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 14])
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--rows", type=int, default=16_000)
    parser.add_argument("--columns", type=int, default=200)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 1000, 50_000])
    parser.add_argument("--threads", type=int, default=None, help="default: numba's thread count")
    parser.add_argument("--shap-rows", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logger.info("threads: %d", args.threads or numba.get_num_threads())
    X, y = generated(args.rows, args.columns, seed=0)
    for depth in args.depths:
        bench_depth(depth, X, y, args)


if __name__ == "__main__":
    main()
