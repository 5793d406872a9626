"""The drift figures: which application fields moved, which model features moved (PSI), how the scores moved."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from scoring.monitoring.psi import bin_shares, psi, quantile_edges

COLOURS = ("#1f4e79", "#c55a11", "#548235")
REFERENCE_COLOUR = "#7f7f7f"


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _grouped_bars(ax: plt.Axes, names: list[str], sections: Mapping[str, Sequence[dict[str, Any]]], key: str,
                  value: str) -> None:
    """Horizontal bars, one group per name (first at the top), one bar per section; drifted bars solid, others pale
    and their values written at their end."""
    height = 0.8 / max(len(sections), 1)
    y = np.arange(len(names))[::-1]
    for i, (label, rows) in enumerate(sections.items()):
        by_name = {r[key]: r for r in rows}
        values = [(by_name[n][value] or 0.0) if n in by_name else 0.0 for n in names]
        drifted = [bool(by_name.get(n, {}).get("drifted")) for n in names]
        offset = y + (len(sections) - 1) / 2 * height - i * height
        colour = COLOURS[i % len(COLOURS)]
        ax.barh(offset, values, height=height * 0.95, color=[colour if d else "none" for d in drifted],
                edgecolor=colour, linewidth=1.2, label=f"{label} (solid: drifted)")
        for pos, v in zip(offset, values):
            ax.text(v, pos, f" {v:.2f}", va="center", fontsize=7, color=colour)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_ylim(-0.7, len(names) - 0.3)


def column_drift_figure(sections: Mapping[str, Sequence[dict[str, Any]]], path: Path) -> Path:
    """Drift score of each application field against its test's threshold (a black tick), per current population."""
    names = [r["column"] for r in next(iter(sections.values()))]
    order = sorted(names, key=lambda n: -max((r["score"] or 0.0) for rows in sections.values()
                                               for r in rows if r["column"] == n))
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) * max(1, len(sections) * 0.7) + 1.6))
    _grouped_bars(ax, order, sections, "column", "score")
    first = {r["column"]: r for r in next(iter(sections.values()))}
    thresholds = [first[n]["threshold"] for n in order]
    y = np.arange(len(order))[::-1]
    ax.scatter([t if t is not None else np.nan for t in thresholds], y, marker="|", s=250, color="black",
               label="threshold of the field's test", zorder=3)
    tests = sorted({r["stattest"] for rows in sections.values() for r in rows if r["score"] is not None})
    ax.set(xlabel="drift score of the field's test (named in the title)",
           title="Application fields: training applicants vs current\n" + ", ".join(tests))
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def psi_figure(sections: Mapping[str, Sequence[dict[str, Any]]], threshold: float, path: Path) -> Path:
    """PSI of the model's most important features, with the drift threshold and the usual 0.1 'watch' line."""
    names = [r["feature"] for r in next(iter(sections.values()))]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) * max(1, len(sections) * 0.7) + 1.6))
    if not names:
        ax.text(0.5, 0.5, "no model feature ranked by SHAP importance", ha="center", transform=ax.transAxes)
        return _save(fig, path)
    _grouped_bars(ax, names, sections, "feature", "psi")
    ax.axvline(threshold, color="#c00000", linestyle="--", label=f"drift threshold {threshold:g}")
    if threshold > 0.1:
        ax.axvline(0.1, color="grey", linestyle=":", label="0.1: moderate shift")
    ax.set(xlabel="population stability index (bins: the reference's deciles, and missing)",
           title="Model features, most important first (mean |SHAP|)\nPSI vs training applicants")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def score_figure(reference: np.ndarray, currents: Mapping[str, np.ndarray], bins: int, path: Path) -> Path:
    """The model's probability of default, reference (holdout) vs each current population: cumulative distribution
    (the Kolmogorov-Smirnov distance is its largest vertical gap) and share per reference score band (what PSI
    compares; 1/bins each for the reference, ties aside)."""

    series = {"training applicants (holdout)": (reference, REFERENCE_COLOUR), **{
        label: (values, COLOURS[i % len(COLOURS)]) for i, (label, values) in enumerate(currents.items())}}
    edges = quantile_edges(reference, bins)
    top = float(np.quantile(np.concatenate([reference, *currents.values()]), 0.995))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.1, 1]})
    width = 0.8 / len(series)
    for i, (label, (values, colour)) in enumerate(series.items()):
        ordered = np.sort(values)
        left.step(ordered, np.arange(1, len(ordered) + 1) / len(ordered), where="post", color=colour, linewidth=1.8,
                  label=f"{label}: mean {np.mean(values):.3f}, n={len(values):,}")
        shares = bin_shares(values, edges)[:-1]
        right.bar(np.arange(len(shares)) + 1 + (i - (len(series) - 1) / 2) * width, shares, width=width * 0.95,
                  color=colour)
    left.set(xlim=(0, top), ylim=(0, 1.01), xlabel="predicted probability of default",
             ylabel="share of applicants at or below", title="Cumulative distribution of the scores")
    left.legend(fontsize=8, loc="lower right")
    right.set_xticks(np.arange(len(edges) + 1) + 1)
    psis = ", ".join(f"{label} {psi(reference, values, bins):.3f}" for label, values in currents.items())
    right.set(xlabel=f"score band: reference's {bins}-quantiles, 1 = safest (ties: uneven)",
              ylabel="share of applicants",
              title=f"Applicants per score band (PSI: {psis})")
    fig.suptitle("Model scores: training applicants vs current", fontsize=12)
    return _save(fig, path)
