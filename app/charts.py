"""Vega-Lite charts (altair, which Streamlit ships with): the score gauge, the reasons, the population histograms."""
from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

RED, GREEN, BLUE, GREY = "#d64545", "#2e9e5b", "#1f4e99", "#a7b0bb"
GAUGE_TICKS = (0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1)


def gauge_angle(probability: float) -> float:
    """Angle (radians, 0 = up) on a half dial whose scale is a square root: low probabilities, where thresholds
    live, get room; the labels show the true values."""
    return -math.pi / 2 + math.pi * math.sqrt(min(max(probability, 0.0), 1.0))


def _polar(frame: pd.DataFrame, centre: tuple[float, float]) -> alt.Chart:
    return alt.Chart(frame).encode(x=alt.value(centre[0]), y=alt.value(centre[1]))


def _arc(rows: list[dict[str, Any]], centre: tuple[float, float], outer: float, inner: float,
         opacity: float = 1.0) -> alt.Chart:
    return _polar(pd.DataFrame(rows), centre).mark_arc(radius=outer, radius2=inner, opacity=opacity).encode(
        theta=alt.Theta("a0:Q", scale=None), theta2="a1", color=alt.Color("color:N", scale=None))


def gauge(probability: float, threshold: float, radius: float = 100) -> alt.LayerChart:
    """Half dial: green up to the threshold, red beyond; the filled arc and the needle are the applicant's
    probability, the dark notch the threshold."""
    colour = RED if probability >= threshold else GREEN
    width, height = radius * 2.8, radius * 1.25 + 62
    centre = (width / 2, radius * 1.25)
    start, cut, end, here = (gauge_angle(p) for p in (0, threshold, 1, probability))
    zones = _arc([{"a0": start, "a1": cut, "color": GREEN}, {"a0": cut, "a1": end, "color": RED}],
                 centre, radius, radius * 0.74, 0.2)
    fill = _arc([{"a0": start, "a1": max(here, start + 0.005), "color": colour}], centre, radius, radius * 0.74)
    notch = _arc([{"a0": cut - 0.012, "a1": cut + 0.012, "color": "#222"}], centre, radius * 1.07, radius * 0.68)
    needle = _arc([{"a0": here - 0.025, "a1": here + 0.025, "color": "#333"}], centre, radius * 0.9, 0)
    hub = _polar(pd.DataFrame({"r": [0]}), centre).mark_circle(size=radius * 2.2, color="#333", opacity=1)
    ticks = pd.DataFrame({"a": [gauge_angle(t) for t in GAUGE_TICKS], "label": [f"{t:.0%}" for t in GAUGE_TICKS]})
    labels = _polar(ticks, centre).mark_text(radius=radius * 1.17, fontSize=11, color="#555").encode(
        theta=alt.Theta("a:Q", scale=None), text="label:N")
    value = _polar(pd.DataFrame({"t": [f"{probability:.1%}"]}), centre).mark_text(
        dy=30, fontSize=28, fontWeight="bold", color=colour).encode(text="t:N")
    cut_label = _polar(pd.DataFrame({"t": [f"threshold {threshold:.1%}"]}), centre).mark_text(
        dy=54, fontSize=12, color="#444").encode(text="t:N")
    return alt.layer(zones, fill, notch, needle, hub, labels, value, cut_label).properties(
        width=width, height=height).configure_view(stroke=None)


def shown(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e3 else f"{value:,.0f}"
    return str(value)


def reasons_chart(reasons: list[dict[str, Any]]) -> alt.LayerChart:
    """Signed SHAP bars: red raises the risk of default, green lowers it; largest first."""
    frame = pd.DataFrame([{"reason": f"{r['code']} {r['text']}" if r.get("text") else
                           f"{r['feature']} = {shown(r['value'])}", "contribution": r["contribution"],
                           "effect": "raises risk" if r["contribution"] > 0 else "lowers risk",
                           "sentence": r["sentence"]} for r in reasons])
    order = frame["reason"].tolist()
    axis = alt.Axis(labelLimit=360, labelOverlap=False, labelFontSize=12)
    base = alt.Chart(frame).encode(y=alt.Y("reason:N", sort=order, title=None, axis=axis))
    bars = base.mark_bar(cornerRadius=3, height={"band": 0.7}).encode(
        x=alt.X("contribution:Q", title="SHAP contribution to the log-odds", scale=alt.Scale(padding=40)),
        color=alt.Color("effect:N", scale=alt.Scale(domain=["raises risk", "lowers risk"], range=[RED, GREEN]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=["sentence:N", alt.Tooltip("contribution:Q", format="+.4f")])
    values = [base.transform_filter(f"datum.contribution {op} 0").mark_text(align=align, dx=dx, fontSize=11).encode(
        x="contribution:Q", text=alt.Text("contribution:Q", format="+.3f"))
        for op, align, dx in ((">", "left", 4), ("<=", "right", -4))]
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#444").encode(x="x:Q")
    return alt.layer(bars, *values, zero).properties(height=reasons_height(len(frame)))


def reasons_height(count: int) -> int:
    return 30 * count + 10


def standing_chart(histogram: pd.DataFrame, value: float | None, axis_format: str = "~s") -> alt.LayerChart:
    """The population's histogram with the applicant's value marked (clipped into the drawn range)."""
    bars = alt.Chart(histogram).mark_bar(color=GREY).encode(
        x=alt.X("start:Q", bin="binned", title=None,
                axis=alt.Axis(format=axis_format, labelFontSize=10, tickCount=4, grid=False)),
        x2="end", y=alt.Y("count:Q", axis=None), tooltip=[alt.Tooltip("count:Q", title="applicants")])
    layers: list[alt.Chart] = [bars]
    if value is not None and len(histogram):
        marked = min(max(value, histogram["start"].min()), histogram["end"].max())
        layers.append(alt.Chart(pd.DataFrame({"x": [marked]})).mark_rule(color=BLUE, strokeWidth=3).encode(x="x:Q"))
    return alt.layer(*layers).properties(height=80)
