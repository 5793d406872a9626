"""The presentation deck, generated from the pipeline's own outputs.

    python -m stages.deck [--params params.yaml] [--output reports/deck.pptx]   (the `deck` stage)

Every number on a slide is read from the reports the pipeline wrote (metrics.json, train.json, threshold.json,
validation.json, evaluate/*.csv, evaluate/local_explanations.json) or from params.yaml, and every chart is one of its
PNGs, so a rerun with other data or other costs gives an updated deck. The MLOps slide reads the stages of dvc.yaml
and the jobs of the CI workflow; the serving slide shows bench/serve.py's figures (reports/serving.json) only when
that benchmark has been run, and says so otherwise.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE
from pptx.util import Inches

from scoring import catalog
from scoring.contract import DAYS_SENTINEL
from scoring.features import field_family
from scoring.model.model_card import released_rows
from scoring.reporting.reports import CI_WORKFLOW, Reports, load_reports
from scoring.reporting.slides import (
    GREY,
    LEFT,
    NAVY,
    PALE,
    RIGHT,
    SLIDE_HEIGHT,
    SLIDE_WIDTH,
    WHITE,
    Box,
    add_arrow,
    add_box,
    add_picture,
    add_table,
    add_text,
    new_slide,
    pct,
)
from scoring.settings import Settings

logger = logging.getLogger(__name__)

MAX_SLIDES = 30
# ---- numbers shown ------------------------------------------------------------------------------------------------
def cost_settings(r: Reports) -> tuple[float, float]:
    return r.settings.cost.fn, r.settings.cost.fp


def families(importance: pd.Series) -> pd.DataFrame:
    """Fields per source table and their share of the model's total mean |SHAP|."""
    grouped = importance.groupby(importance.index.map(field_family)).agg(["count", "sum"])
    grouped = grouped.sort_values("sum", ascending=False)
    return pd.DataFrame({"source": grouped.index, "fields": grouped["count"].to_numpy(),
                         "share of importance": [pct(v / importance.sum()) for v in grouped["sum"]]})


def approval_gaps(fairness: pd.DataFrame) -> list[tuple[float, str]]:
    """Per attribute, largest first: (gap in points, sentence) between the highest and lowest approval rate."""
    gaps = []
    for attribute, part in fairness.groupby("attribute", sort=False):
        high, low = part.loc[part.approval_rate.idxmax()], part.loc[part.approval_rate.idxmin()]
        gap = 100 * (high.approval_rate - low.approval_rate)
        gaps.append((gap, f"{attribute}: approval {pct(high.approval_rate)} for {high.group} (n={high.n:,}) vs "
                          f"{pct(low.approval_rate)} for {low.group} (n={low.n:,}), a gap of {gap:.1f} points."))
    return sorted(gaps, reverse=True)


def headline_table(r: Reports) -> pd.DataFrame:
    """The holdout metrics of metrics.json, as shown on the results slide."""
    m = r.metrics
    spans = m.get("intervals", {})

    def with_span(key: str) -> str:  # metrics.json's figure, with its bootstrap interval where there is one
        return interval_text({**spans[key], "value": m[key]}, 4) if key in spans else f"{m[key]:.4f}"

    rows = [("AUC [95% bootstrap]", with_span("auc")), ("PR-AUC (average precision)", f"{m['pr_auc']:.4f}"),
            ("Brier score", f"{m['brier']:.4f}"), ("Threshold", f"{m['threshold']:.3f}"),
            ("Business cost / applicant", with_span("business_cost")),
            ("Business cost at 0.5", f"{m['business_cost_at_0_5']:.4f}"), ("Approval rate", pct(m["approval_rate"]))]
    if "oracle_auc" in m:
        rows.append(("Oracle AUC (generator's true risk)", f"{m['oracle_auc']:.4f}"))
    return pd.DataFrame(rows, columns=["holdout metric", "value"])


def comparison_table(r: Reports) -> tuple[pd.DataFrame, int]:
    """train.json's candidates with threshold.json's lowest out-of-fold cost; and the chosen model's row."""
    rows = []
    costs = r.threshold.get("models_cost", {})
    for name, result in r.train["models"].items():
        versus = result.get("vs_best")
        cost = costs.get(name, {}).get("min_cost")
        rows.append({"model": name, "CV AUC": f"{result['cv_auc']:.4f} ± {result['cv_auc_std']:.4f}",
                     "vs best (± se)": f"{versus['mean']:+.4f} ± {versus['se']:.4f}" if versus else "",
                     "lowest OOF cost": interval_text(cost, 3) if cost else
                     f"{r.threshold['models_min_cost'].get(name, float('nan')):.4f}",
                     "fit (s)": f"{result['fit_seconds']:.0f}",
                     "best parameters": ", ".join(f"{k}={v}" for k, v in result["best_params"].items())})
    chosen = list(r.train["models"]).index(r.train["chosen"])
    return pd.DataFrame(rows), chosen


# ---- slides -------------------------------------------------------------------------------------------------------
def slide_title(deck: Any, r: Reports) -> None:
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    band = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, 0, Inches(2.2), deck.slide_width, Inches(2.6))
    band.fill.solid()
    band.fill.fore_color.rgb = NAVY
    band.line.fill.background()
    add_text(slide, Box(0.8, 2.45, 11.7, 1.1), ["Prêt à dépenser: credit scoring"], size=40, bullets=False,
             color=WHITE)
    m, source = r.metrics, r.settings.data.source
    subtitle = (f"{r.train['chosen']} model, refusal at a probability of default ≥ {m['threshold']:.3f}, "
                f"holdout AUC {m['auc']:.3f}, on {source} data")
    add_text(slide, Box(0.8, 3.6, 11.7, 1.0), [subtitle], size=20, bullets=False, color=WHITE)
    add_text(slide, Box(0.8, 5.3, 11.7, 1.2), [
        "Every number and chart in this deck is read from reports/ and params.yaml.",
        "Rebuild: dvc repro, then python -m scoring.reporting.deck --output reports/deck.pptx"],
        size=14, bullets=False, color=GREY)


def slide_context(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "The decision and what it costs", ["params.yaml (cost)", r.source(r.paths.metrics_json)])
    fn, fp = cost_settings(r)
    rate = r.metrics["default_rate"]
    add_text(slide, Box(0.5, 1.3, 7.4, 5.6), [
        "Each applicant gets a probability of default; the credit is refused at or above a threshold.",
        ("Missed default (false negative):", f"costs {fn:g}: the lender loses the loan."),
        ("Refused good client (false positive):", f"costs {fp:g}: the lender loses a margin."),
        ("Business cost per applicant", f"= ({fn:g} × FN + {fp:g} × FP) / n, the quantity the threshold minimises."),
        f"Holdout default rate {pct(rate, 2)}: granting everyone is {pct(1 - rate)} accurate yet costs "
        f"{fn * rate:.4f} per applicant; refusing everyone costs {fp * (1 - rate):.4f}.",
        "Accuracy is the wrong yardstick: the model is judged by AUC and by this cost.",
    ], size=17)
    matrix = pd.DataFrame({"": ["defaulted", "repaid"], "granted": [f"{fn:g} (FN)", "0"],
                           "refused": ["0", f"{fp:g} (FP)"]})
    add_text(slide, Box(8.3, 1.6, 4.5, 0.5), ["Cost of one decision"], size=16, bullets=False, color=NAVY)
    add_table(slide, matrix, Box(8.3, 2.2, 4.5, 1.5), size=15, widths=[1.5, 1.5, 1.5])


def slide_data(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Data: seven tables, validated against one contract", [r.source(r.paths.validation_json),
                                                                                   "params.yaml (data)"])
    rows = [{"table": t["table"], "rows": f"{t['rows']:,}", "columns": t["columns"],
             "checks": t["expectations"], "failed": sum(f["severity"] == "error" for f in t["findings"])}
            for t in r.validation["tables"]]
    add_table(slide, pd.DataFrame(rows), Box(0.5, 1.4, 7.0, 4.0), size=13, widths=[2.5, 1.25, 1.15, 1.0, 1.1])
    keys = r.validation.get("key_coverage", {})
    synthetic = r.settings.data.synthetic
    source = (f"Generated in Kaggle's schema: {synthetic.n_applicants:,} applicants (seed {synthetic.seed})"
              if r.settings.data.source == "synthetic" else "Kaggle's Home Credit files")
    add_text(slide, Box(7.9, 1.3, 4.95, 5.6), [
        ("Source:", source + "."),
        ("Validation:", f"{'PASSED' if r.validation['passed'] else 'FAILED'}; keys found in the parent table: "
                        f"{pct(min(keys.values())) if keys else 'n/a'} at worst."),
        ("Quirks handled:", f"DAYS_EMPLOYED = {DAYS_SENTINEL} (pensioners, unemployed) becomes missing plus a flag; "
                            "CODE_GENDER 'XNA'; ORGANIZATION_TYPE 'XNA'."),
        ("Missing EXT_SOURCE_1..3:", "kept missing (XGBoost learns where they go), summarised by their mean, "
                                     "min, max and missing count."),
    ], size=15)


def slide_features(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Features: the application plus five histories",
                      [r.source(r.paths.shap_importance), r.source(r.paths.metrics_json), "params.yaml (split)"])
    add_table(slide, families(r.importance), Box(0.5, 1.4, 6.6, 3.0), size=14, widths=[3.6, 1.2, 1.8])
    holdout = r.settings.split.holdout_fraction
    add_text(slide, Box(7.5, 1.3, 5.35, 5.6), [
        f"{len(r.importance)} input fields reach the model (one-hot columns summed back to their field).",
        "Ratios: credit / income, annuity / income, annuity / credit, credit / goods price, income per person, "
        "employment / age.",
        "Histories: counts, sums, means and maxima per applicant (late instalments, days past due, refused "
        "applications, card utilisation, overdue bureau credits).",
        f"Stratified holdout: {pct(holdout, 0)} of the labelled applicants ({r.metrics['n']:,}) kept for the "
        "final evaluation of the model fitted without them" + released_on(r.train) + ".",
        "One code path for training, batch scoring and the scoring service (scoring.features).",
    ], size=15)


def released_on(train: dict[str, Any]) -> str:
    rows = released_rows(train)
    return f"; the served model is the same procedure refitted on all {rows[0]:,} labelled applicants" if rows else ""


def slide_comparison(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Model comparison: same folds, AUC and business cost",
                      [r.source(r.paths.train_report), r.source(r.paths.threshold_json), "params.yaml (train)"])
    table, chosen = comparison_table(r)
    bottom = add_table(slide, table, Box(0.5, 1.4, 12.33, 2.0), size=12,
                       widths=[1.4, 1.6, 1.5, 2.0, 0.7, 5.13], bold_rows=[chosen])
    train = r.settings.train
    why = (f"the simplest within {train.noise_se:g} corrected standard errors of the best AUC"
           if train.model == "auto" else "forced by params.yaml (train.model)")
    blend = r.train.get("blend")
    add_text(slide, Box(0.5, bottom + 0.5, 12.33, 6.9 - bottom - 0.5), [
        ("Kept:", f"{r.train['chosen']} ({why}), in bold above."),
        ("Protocol:", f"{train.oof_folds} stratified folds x {train.oof_repeats} repeats, the same for every "
                      f"candidate; boosted trees early-stopped on inner folds, '{train.search}' search; "
                      f"'{train.imbalance}' inside each fold."),
        ("Business view:", "lowest cost each candidate reaches on its own pooled out-of-fold scores, with its "
                           "95% bootstrap interval."),
        *([("Blend:", f"{' + '.join(blend['members'])} {blend['gain']:+.4f} AUC (se {blend['se']:.4f}): "
                      f"{'beyond the noise' if blend['beyond_noise'] else 'within the noise, not kept'}.")]
          if blend else []),
    ], size=14)


def slide_threshold(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Threshold: the lowest business cost, not 0.5",
                      [r.source(r.paths.threshold_json), r.source(r.paths.cost_curve_png)])
    add_picture(slide, r.path(r.paths.cost_curve_png), Box(0.4, 1.3, 8.0, 5.6))
    t = r.threshold
    saving = 1 - t["oof_business_cost"] / t["oof_business_cost_at_0_5"]
    oof_cost = interval_text(t["oof_business_cost_interval"], 4) if "oof_business_cost_interval" in t else \
        f"{t['oof_business_cost']:.4f}"
    add_text(slide, Box(8.7, 1.5, 4.2, 5.4), [
        ("Threshold:", f"{t['threshold']:.3f} on the calibrated probability of default"
                       + (f" (per CV repeat: {', '.join(f'{v:.3f}' for v in t['threshold_by_repeat'])}; "
                          f"calibrated ideal fp/(fp+fn) = {t['calibrated_threshold']:.3f})."
                          if "threshold_by_repeat" in t else ".")),
        ("Cost:", f"{oof_cost} per applicant, against {t['oof_business_cost_at_0_5']:.4f} at 0.5 "
                  f"({pct(saving)} less)."),
        ("Approval rate:", f"{pct(t['oof_approval_rate'])} of applicants."),
        ("No leakage:", "chosen on out-of-fold probabilities of the training applicants, pooled over the CV "
                        "repeats; the holdout is not used."),
    ], size=16)


def slide_results(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Holdout results at the chosen threshold",
                      [r.source(r.paths.metrics_json), r.source(r.paths.holdout_cost_curve_png)])
    add_table(slide, headline_table(r), Box(0.5, 1.4, 5.6, 3.5), size=14, widths=[3.8, 1.8])
    c = r.metrics["confusion"]
    confusion = pd.DataFrame({"": ["defaulted", "repaid"], "granted": [f"{c['fn']:,}", f"{c['tn']:,}"],
                              "refused": [f"{c['tp']:,}", f"{c['fp']:,}"]})
    add_text(slide, Box(0.5, 5.2, 5.6, 0.4), [f"Confusion on {r.metrics['n']:,} holdout applicants"], size=14,
             bullets=False, color=NAVY)
    add_table(slide, confusion, Box(0.5, 5.65, 5.6, 1.0), size=13, widths=[1.8, 1.9, 1.9])
    add_picture(slide, r.path(r.paths.holdout_cost_curve_png), Box(6.5, 1.4, 6.4, 5.4))


def slide_discrimination(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Ranking: ROC and precision-recall on the holdout",
                      [r.source(r.paths.roc_png), r.source(r.paths.precision_recall_png),
                       r.source(r.paths.metrics_json)])
    add_picture(slide, r.path(r.paths.roc_png), Box(0.4, 1.25, 4.9, 4.9))
    add_picture(slide, r.path(r.paths.precision_recall_png), Box(5.4, 1.25, 4.9, 4.9))
    m = r.metrics
    lines = [("AUC", f"{m['auc']:.4f}: a random defaulter scores above a random good client this often."),
             ("PR-AUC", f"{m['pr_auc']:.4f} against a default rate of {m['default_rate']:.4f}.")]
    if "oracle_auc" in m:
        lines.append(("Ceiling:", f"the generator's true probabilities reach AUC {m['oracle_auc']:.4f}."))
    add_text(slide, Box(10.4, 1.5, 2.5, 5.4), lines, size=14)


def slide_calibration(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Calibration: probabilities that mean what they say",
                      [r.source(r.paths.calibration_png), r.source(r.paths.calibration_csv),
                       r.source(r.paths.metrics_json)])
    add_picture(slide, r.path(r.paths.calibration_png), Box(0.5, 1.25, 5.6, 5.6))
    gap = (r.calibration["fraction_of_defaults"] - r.calibration["mean_predicted"]).abs()
    add_text(slide, Box(6.6, 1.5, 6.2, 5.4), [
        ("Method:", f"{r.settings.train.calibration} regression on out-of-fold scores of the training "
                    "applicants."),
        ("Brier score:", f"{r.metrics['brier']:.4f} on the holdout (lower is better)."),
        ("Largest gap:", f"{gap.max():.4f} between predicted and observed default rate over "
                         f"{len(r.calibration)} groups of applicants."),
        "Why it matters: the threshold, the cost and the probability shown to an adviser are all read on "
        "this scale.",
    ], size=17)


def slide_global_explanations(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "What drives the score, overall (SHAP)",
                      [r.source(r.paths.shap_importance_png), r.source(r.paths.shap_summary_png)])
    add_picture(slide, r.path(r.paths.shap_importance_png), Box(0.3, 1.2, 5.6, 5.75))
    add_picture(slide, r.path(r.paths.shap_summary_png), Box(6.0, 1.2, 4.6, 5.75))
    top = r.importance.head(3)
    add_text(slide, Box(10.7, 1.5, 2.35, 5.4), [
        "Top three: " + ", ".join(top.index) + ".",
        "Left: mean absolute contribution per field.",
        "Right: one dot per applicant; red is a high value of the field.",
    ], size=13)


def slide_one_applicant(deck: Any, r: Reports) -> None:
    case = r.local["borderline"]
    applicant = case["SK_ID_CURR"]
    slide = new_slide(deck, f"One applicant explained: {applicant}, the closest call",
                      [r.source(r.paths.local_explanations),
                       r.source(r.paths.waterfall_png("borderline", applicant))])
    add_picture(slide, r.path(r.paths.waterfall_png("borderline", applicant)), Box(0.3, 1.2, 7.6, 5.75))
    reasons = [f"{reason_words(x)} ({signed(x['contribution'], 3)})" for x in case["reasons"][:5]]
    add_text(slide, Box(8.1, 1.3, 4.8, 1.3), [
        ("Probability of default:", f"{case['probability']:.3f} against a threshold of "
                                    f"{r.metrics['threshold']:.3f}: {case['decision']}."),
    ], size=15, bullets=False)
    add_text(slide, Box(8.1, 2.5, 4.8, 0.4), ["Top reasons (contribution to the raw score)"], size=14,
             bullets=False, color=NAVY)
    add_text(slide, Box(8.1, 3.0, 4.8, 3.9), reasons, size=13)


def reason_words(reason: dict[str, Any]) -> str:
    """A reason as the applicant is told it: its code and sentence from the catalogue ("R02 Employed for 1.9 years
    (short)"); the catalogue's label and the value for a record written before reasons had words."""
    if reason.get("text"):
        return f"{reason['code']} {reason['text']}"
    return f"{catalog.label(reason['feature'])} = {format_value(reason['value'])}"


def signed(value: float, digits: int) -> str:
    """+0.147 or −0.125 (a true minus sign, which a line never breaks after)."""
    return f"{value:+.{digits}f}".replace("-", "\u2212")


def format_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "missing"
    return f"{value:,.4g}" if isinstance(value, (int, float)) else str(value)


def slide_three_applicants(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Three applicants, two explanation methods",
                      [r.source(r.paths.local_explanations), r.source(r.paths.lime_png("*", "*"))])
    rows = [{"case": label, "SK_ID_CURR": case["SK_ID_CURR"], "probability": f"{case['probability']:.3f}",
             "decision": case["decision"],
             "top three reasons (SHAP)": "; ".join(f"{reason_words(x)} ({signed(x['contribution'], 2)})"
                                                   for x in case["reasons"][:3])}
            for label, case in r.local.items()]
    add_table(slide, pd.DataFrame(rows), Box(0.5, 1.35, 12.33, 1.6), size=12, widths=[1.3, 1.4, 1.3, 1.1, 7.23])
    borderline = r.local["borderline"]["SK_ID_CURR"]
    add_picture(slide, r.path(r.paths.lime_png("borderline", borderline)), Box(0.5, 3.2, 5.3, 3.75))
    add_text(slide, Box(6.2, 3.4, 6.6, 3.5), [
        f"Left: LIME on applicant {borderline}, a local linear model fitted around them on the encoded inputs: a "
        "model-agnostic second opinion on the same decision.",
        "SHAP contributions add up exactly to the model's raw score; they give the reasons a client is told "
        "(batch scoring writes the top three).",
    ], size=15)


def slide_fairness(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Fairness check: approval and errors by group", [r.source(r.paths.fairness_csv)])
    f = r.fairness
    table = pd.DataFrame({"attribute": f.attribute, "group": f.group, "n": f.n.map("{:,}".format),
                          "approved": f.approval_rate.map(pct), "ratio": f.approval_ratio.map("{:.2f}".format),
                          "default rate": f.default_rate.map(pct), "good refused": f.good_refused_share.map(pct),
                          "calibration gap": f.calibration_gap.map("{:+.3f}".format)})
    add_table(slide, table, Box(0.5, 1.35, 8.55, 4.0), size=13, widths=[1.6, 0.9, 0.8, 1.1, 0.8, 1.05, 1.1, 1.2])
    add_text(slide, Box(9.3, 1.3, 3.55, 5.6), [
        *(sentence for _, sentence in approval_gaps(f)),
        "Gated (reports/fairness.json, params.yaml fairness): for gender, the four-fifths rule on approval, the gap "
        "in good clients refused and calibration; for age bands, calibration. Gender is never a model input; age "
        "is, as a measured risk factor. A failed gate keeps the model from becoming champion.",
    ], size=13)


def serving_lines(serving: dict[str, Any] | None) -> list[str | tuple[str, str]]:
    """The benchmark's figures in words, or what to run to get them."""
    if not serving:
        return [("Latency per request:", "not measured on this machine yet (`make bench-serve` writes "
                                         "reports/serving.json).")]
    ray, base = serving["results"][serving["served"]], serving["results"][serving["baseline"]]
    return [
        ("Latency per request:", f"{ray['sequential']['p50_ms']:.1f} ms median one at a time "
                                 f"({base['sequential']['p50_ms']:.1f} ms for plain uvicorn on the same code)."),
        ("Throughput:", f"{ray['c16']['rps']:,.0f} requests/s with 16 clients, "
                        f"{ray['c16']['rps'] / base['c16']['rps']:.2f}× the plain server; "
                        f"{ray['c64']['rps']:,.0f}/s with 64, {ray['c64']['errors'] + ray['c64']['non_2xx']} errors."),
        ("Batch endpoint:", f"{ray['batch_no_reasons_per_s']:,.0f} applicants/s without reasons, "
                            f"{ray['batch_3_reasons_per_s']:,.0f}/s with three reasons each."),
        f"Measured by bench/serve.py on {serving['machine']} ({serving['date']}).",
    ]


def slide_mlops(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "MLOps: rebuilt, tracked and shipped",
                      ["dvc.yaml", "params.yaml (tracking)", CI_WORKFLOW.as_posix(), "serve/config.yaml"])
    width, gap = 12.33 / len(r.stages), 0.12
    for i, (stage, output) in enumerate(r.stages.items()):
        add_box(slide, Box(0.5 + i * width, 1.35, width - gap, 0.75), stage, output)
    add_text(slide, Box(0.5, 2.2, 12.3, 0.4), [f"dvc repro: {len(r.stages)} stages, each rerun only when its code, "
                                                "data or params change; a second run is a no-op."],
             size=13, bullets=False, color=GREY)
    tracking = r.settings.tracking
    columns = [
        ("Versioned (DVC)", [
            "params.yaml drives every stage; `dvc exp run -S cost.fn=5` reruns threshold and what follows.",
            "Data and models are DVC outputs, never in git; metrics.json is committed for `dvc metrics diff`.",
        ]),
        ("Tracked (MLflow)", [
            f"One run per pipeline run in experiment '{tracking.experiment}': params, metrics, plots, the model "
            "with its signature, the threshold, the git commit.",
            "Registered as 'credit-scoring': alias 'champion' moves only when the new version beats the champion's "
            "business cost on the same holdout; otherwise 'challenger'.",
        ]),
        ("Shipped (CI/CD)", [
            f"Workflow jobs: {', '.join(r.ci_jobs) or 'none yet'}.",
            "Pull requests get `dvc metrics diff` and the drift summary as a comment.",
            "main: container image, then a KubeRay RayService rendered from serve/config.yaml.",
        ]),
    ]
    for i, (heading, lines) in enumerate(columns):
        left = 0.5 + i * 4.15
        add_text(slide, Box(left, 2.8, 3.95, 0.5), [heading], size=18, bullets=False, color=NAVY)
        add_text(slide, Box(left, 3.35, 3.95, 3.6), lines, size=13)


def slide_serving(deck: Any, r: Reports) -> None:
    sources = ["serve/config.yaml", r.source(r.paths.threshold_json)]
    sources += [r.source(r.paths.serving_json)] if r.serving else []
    slide = new_slide(deck, "Serving: one Ray Serve graph per decision", sources)
    history = r.settings.paths.history.as_posix()
    add_box(slide, Box(0.5, 1.5, 2.6, 1.5), "Streamlit app", "form generated from the data contract")
    add_arrow(slide, Box(3.2, 2.0, 0.6, 0.5))
    add_box(slide, Box(3.9, 1.5, 5.3, 1.5), "Ray Serve (HAProxy ingress)", "validate → history → features → score "
                                                                           "→ SHAP reasons → decision → log")
    add_arrow(slide, Box(9.3, 2.0, 0.6, 0.5), MSO_SHAPE.LEFT_ARROW)
    add_box(slide, Box(10.0, 1.5, 2.8, 1.5), "MLflow registry", "alias 'champion' and its threshold")
    add_arrow(slide, Box(5.2, 3.1, 0.45, 0.55), MSO_SHAPE.UP_ARROW)
    add_arrow(slide, Box(7.5, 3.1, 0.45, 0.55), MSO_SHAPE.DOWN_ARROW)
    add_box(slide, Box(3.9, 3.75, 2.6, 0.95), "History lookup", history, fill=PALE)
    add_box(slide, Box(6.6, 3.75, 2.6, 0.95), "Production log", f"{r.settings.paths.production} → drift",
            fill=PALE)
    add_text(slide, Box(0.5, 4.9, 12.3, 2.1), [
        f"Decision at the threshold stage's output ({r.threshold['threshold']:.3f} today); the training feature "
        "code; every refusal comes with its reasons.",
        *serving_lines(r.serving),
    ], size=13)


def slide_drift(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Drift monitoring: training applicants against today's",
                      [r.source(r.paths.drift_json), r.source(r.paths.column_drift_png), "params.yaml (drift)"])
    d = r.drift
    drifted = ", ".join(d.get("drifted_columns", [])) or "none"
    lines: list[str | tuple[str, str]] = [
        ("Test applicants:", f"{d['n_drifted']} of {d['n_columns']} watched fields drifted ({drifted}) on "
                             f"{d['rows']:,} rows; prediction PSI {d['prediction_psi']:.3f}, mean probability "
                             f"{pct(d['mean_probability_reference'])} → {pct(d['mean_probability_current'])}."),
    ]
    production = d.get("production") or {}
    if production.get("rows"):
        served = ", ".join(production.get("drifted_columns", [])) or "none"
        lines.append(("Served traffic:", f"{production['rows']:,} logged applicants; drifted: {served}."))
    else:
        lines.append(("Served traffic:", "not enough logged applicants yet (`make replay` sends some)."))
    lines += [
        ("How:", f"Evidently's test per field ({r.settings.drift.stattest or 'Wasserstein or Jensen-Shannon'}), "
                 f"PSI of the {r.settings.drift.psi_top_features} most important features (drift at ≥ "
                 f"{r.settings.drift.psi_threshold:g}), PSI of the scores."),
        ("Then:", "re-check calibration and the business cost on recent labelled applicants before retraining."),
    ]
    add_text(slide, Box(0.5, 1.4, 6.1, 5.5), lines, size=14)
    add_picture(slide, r.path(r.paths.column_drift_png), Box(6.8, 1.3, 6.0, 5.65))


def interval_text(figure: dict[str, float], digits: int = 3) -> str:
    return f"{figure['value']:.{digits}f} [{figure['low']:.{digits}f}, {figure['high']:.{digits}f}]"


def slide_performance(deck: Any, r: Reports) -> None:
    """Realised performance once outcomes arrived (the performance stage): the verdict a script gates on."""
    slide = new_slide(deck, "Realised performance: repayment outcomes against training",
                      [r.source(r.paths.performance_json), r.source(r.paths.metrics_json), "params.yaml (performance)"])
    perf = r.performance or {"verdict": "not measured", "overall": {"n": 0}, "reasons": []}
    overall, training = perf["overall"], perf.get("training", {})
    lines: list[str | tuple[str, str]] = [
        ("Verdict:", f"{perf['verdict'].replace('_', ' ')}"
                     + (f" ({'; '.join(perf['reasons'])})" if perf["reasons"] else ".")),
        ("Outcomes:", f"{overall['n']:,} scored applicants with a known outcome ({perf.get('outcomes', 0):,} "
                      f"received, `dvc repro performance` joins them to the production log)."),
    ]
    if "auc" in overall:
        lines += [("AUC:", f"{interval_text(overall['auc'])}, training {training.get('auc') or 0:.3f}."),
                  ("Business cost:", f"{interval_text(overall['business_cost'])} per applicant, training "
                                     f"{training.get('business_cost') or 0:.3f}."),
                  ("Approval rate:", f"{pct(overall['approval_rate']['value'])}, training "
                                     f"{pct(training.get('approval_rate') or 0)}."),
                  ("Calibration:", f"observed / predicted default rate {interval_text(overall['calibration'], 2)} "
                                   "(1 at training).")]
    add_text(slide, Box(0.5, 1.4, 6.1, 5.5), lines, size=14)
    figure = r.root / r.paths.performance_png
    if figure.exists():
        add_picture(slide, figure, Box(6.8, 1.3, 6.0, 5.65))


def slide_limits(deck: Any, r: Reports) -> None:
    slide = new_slide(deck, "Limits and next steps", [r.source(r.paths.metrics_json), r.source(r.paths.fairness_csv),
                                                      "params.yaml"])
    m = r.metrics
    synthetic = r.settings.data.source == "synthetic"
    limits = [("Data:", "synthetic, calibrated on real rows: figures describe the generator, not real clients."
               if synthetic else "Kaggle's historical applications, not today's applicants.")]
    if "oracle_auc" in m:
        limits.append(("Headroom:", f"AUC {m['auc']:.4f} against {m['oracle_auc']:.4f} for the true risk."))
    limits += [("Fairness:", "largest approval gap, " + approval_gaps(r.fairness)[0][1]),
               ("Calibration:", "fitted on the training applicants; to re-check when the population drifts."),
               ("Explanations:", "SHAP on the uncalibrated score (same ranking as the calibrated probability).")]
    for box, heading in ((LEFT, "Limits"), (RIGHT, "Next steps")):
        add_text(slide, Box(box.left, box.top, box.width, 0.5), [heading], size=20, bullets=False, color=NAVY)
    add_text(slide, Box(0.5, 1.9, 6.0, 5.0), limits, size=15)
    add_text(slide, Box(6.83, 1.9, 6.0, 5.0), [
        "Label recent applicants and re-check calibration and cost when the drift report flags fields.",
        "Run the pipeline on Kaggle's files (data.source: kaggle) and compare.",
        "Review the group gaps with risk and compliance before any production use.",
    ], size=15)


SLIDES: tuple[Callable[[Any, Reports], None], ...] = (
    slide_title, slide_context, slide_data, slide_features, slide_comparison, slide_threshold, slide_results,
    slide_discrimination, slide_calibration, slide_global_explanations, slide_one_applicant,
    slide_three_applicants, slide_fairness, slide_mlops, slide_serving, slide_drift, slide_performance, slide_limits,
)


def build_deck(settings: Settings, root: Path = Path(".")) -> Any:
    """The whole deck (a python-pptx Presentation) from the reports under `root`."""
    reports = load_reports(settings, root)
    deck = Presentation()
    deck.slide_width, deck.slide_height = Inches(SLIDE_WIDTH), Inches(SLIDE_HEIGHT)
    for add_slide in SLIDES:
        add_slide(deck, reports)
    if len(deck.slides) > MAX_SLIDES:
        raise ValueError(f"the deck has {len(deck.slides)} slides; keep it to {MAX_SLIDES} at most")
    return deck
