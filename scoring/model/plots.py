"""The figures people look at: cost curve, ROC, precision-recall, calibration, SHAP summary, waterfalls."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cost_curve_figure(curve: pd.DataFrame, threshold: float, marked_costs: tuple[float, float], path: Path) -> Path:
    """Cost per applicant against the threshold, with the chosen threshold and the naive 0.5 marked.

    `marked_costs` are the exact costs at the chosen threshold and at 0.5: the curve is sampled on a grid, and
    reading it between grid points would show a cost the threshold does not have.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(curve.threshold, curve.cost, color="#1f4e79", label="business cost per applicant")
    for t, c, style, label in ((threshold, marked_costs[0], "-", f"chosen {threshold:.3f}"),
                               (0.5, marked_costs[1], "--", "0.5")):
        ax.axvline(t, linestyle=style, color="#c00000" if style == "-" else "grey", alpha=0.8)
        ax.scatter([t], [c], color="#c00000" if style == "-" else "grey", zorder=3, label=f"{label}: cost {c:.3f}")
    ax.set(xlabel="threshold on the probability of default (refuse at or above)", ylabel="cost per applicant",
           title="Business cost against the decision threshold")
    ax.legend()
    return _save(fig, path)


def roc_figure(roc: pd.DataFrame, auc: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(roc.fpr, roc.tpr, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the holdout")
    ax.legend(loc="lower right")
    return _save(fig, path)


def precision_recall_figure(pr: pd.DataFrame, pr_auc: float, base_rate: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(pr.recall, pr.precision, label=f"model (average precision {pr_auc:.3f})")
    ax.axhline(base_rate, linestyle="--", color="grey", label=f"default rate {base_rate:.3f}")
    ax.set(xlabel="recall (defaulters caught)", ylabel="precision", title="Precision-recall on the holdout")
    ax.legend()
    return _save(fig, path)


def calibration_figure(calibration: pd.DataFrame, brier: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    top = float(max(calibration.max().max(), 0.05)) * 1.05
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(calibration.mean_predicted, calibration.fraction_of_defaults, marker="o",
            label=f"model (Brier {brier:.4f})")
    ax.set(xlabel="mean predicted probability (decile)", ylabel="observed default rate",
           title="Calibration on the holdout")
    ax.legend()
    return _save(fig, path)


def importance_figure(importance: pd.Series, path: Path, top: int = 20) -> Path:
    data = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(data) + 1.2))
    ax.barh(data.index, data.values, color="#1f4e79")
    ax.set(xlabel="mean |SHAP contribution|", title="Global feature importance (SHAP)")
    return _save(fig, path)


def shap_summary_figure(contribs: pd.DataFrame, X: pd.DataFrame, path: Path, top: int = 20) -> Path:
    """SHAP beeswarm of the numeric fields (colour: the field's value, low blue to high red)."""
    import shap

    numeric = [c for c in contribs.abs().mean().sort_values(ascending=False).index
               if c in X.columns and pd.api.types.is_numeric_dtype(X[c])][:top]
    shap.summary_plot(contribs[numeric].to_numpy(), X[numeric].astype(float), show=False, max_display=top)
    fig = plt.gcf()
    fig.suptitle("SHAP summary: how each field moves the score")
    return _save(fig, path)


def waterfall_figure(reasons: Sequence[tuple[str, float]], base: float, score: float, title: str,
                     path: Path) -> Path:
    """Waterfall of one applicant's top contributions (label, contribution), from the base value to the raw score.

    The fields beyond the top ones are summed into one bar, so the bars end exactly at the applicant's score.
    """
    rest = score - base - sum(contribution for _, contribution in reasons)
    labels = [label for label, _ in reasons] + ["all other fields"]
    steps = [contribution for _, contribution in reasons] + [rest]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(steps) + 2.0))
    start = base
    for i, step in enumerate(steps):
        colour = "#c00000" if step > 0 else "#2e7d32"
        ax.barh(i, step, left=start, color=colour, alpha=0.55 if i == len(steps) - 1 else 1.0)
        start += step
    ax.set_yticks(range(len(steps)), labels)
    ax.invert_yaxis()
    ax.axvline(base, color="grey", linestyle="--", label=f"average applicant {base:.3f}")
    ax.axvline(score, color="black", linestyle="-", label=f"this applicant {score:.3f}")
    ax.margins(x=0.08)
    ax.set(xlabel="raw score, log-odds of default (red: riskier, green: safer)")
    ax.legend(loc="best", fontsize=8)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def lime_figure(weights: list[tuple[str, float]], title: str, path: Path) -> Path:
    """LIME's local linear weights, coloured like the waterfall: red pushes towards default."""
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(weights) + 1.8))
    names, values = zip(*weights) if weights else ((), ())
    ax.barh(range(len(values)), values, color=["#c00000" if v > 0 else "#2e7d32" for v in values])
    ax.set_yticks(range(len(values)), names)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="LIME weight on the probability of default (red: riskier, green: safer)")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def learning_curve_figure(rows: Sequence[int], auc: Sequence[float], sd: Sequence[float], per_doubling: float,
                          path: Path, target: tuple[float, int] | None = None) -> Path:
    """Repeated-CV AUC against the training rows (log scale) with its fold SD, and the line of the fitted slope
    through the last point: the projection, extended to `target` (AUC, rows) when given."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(rows, auc, yerr=sd, marker="o", color="#1f4e79", capsize=4, label="repeated-CV AUC (± fold SD)")
    end = max(rows[-1], target[1]) if target else rows[-1]
    ax.plot([rows[0], end], [auc[-1] + per_doubling * math.log2(r / rows[-1]) for r in (rows[0], end)], "--",
            color="grey", label=f"{per_doubling:+.4f} AUC per doubling of the rows (fitted slope)")
    if target:
        ax.axhline(target[0], color="#c00000", linestyle=":", label=f"target {target[0]:.3f}")
        ax.scatter([target[1]], [target[0]], color="#c00000", zorder=3, label=f"projected: about {target[1]:,} rows")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="training rows (log scale)", ylabel="AUC on the outer folds",
           title="What more labelled applicants would add")
    ax.legend(loc="lower right")
    return _save(fig, path)
