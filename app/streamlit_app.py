"""Credit scoring tester: pick a test applicant or fill the form, score it through the service's HTTP API, and see
the decision, the probability against the threshold, the reasons and where the applicant stands in the population.

    streamlit run app/streamlit_app.py        # SCORING_API_URL (default http://127.0.0.1:8000), PROJECT_ROOT

The model is never loaded here: every score comes from `POST /score`.
"""
from __future__ import annotations

import html
import json
import random
import sys
import zlib
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

from app import charts, fairness_panel, form, population  # noqa: E402
from app.client import ScoringClient, ServiceError, service_url  # noqa: E402
from app.monitoring import sidebar_monitoring  # noqa: E402
from scoring.serving import request_schema  # noqa: E402
from scoring.settings import load_settings  # noqa: E402

TYPICAL = "typical"  # the choice that fills the form with the population's medians and modes (no SK_ID_CURR)
REASONS = load_settings(population.project_root() / "params.yaml").reasons  # default and most reasons shown


@st.cache_data(show_spinner="Reading the test applicants…")
def load_population(path: str, modified: float) -> pd.DataFrame:
    return pd.read_parquet(path)


@st.cache_data(ttl=30, show_spinner=False)
def model_info(base_url: str) -> dict[str, Any]:
    return ScoringClient(base_url).model()


def population_or_stop() -> pd.DataFrame:
    root = population.project_root()
    try:
        path = population.applicants_path(root)
        return load_population(str(path), path.stat().st_mtime)
    except (FileNotFoundError, KeyError) as error:
        st.error(f"The test applicants could not be read under {root}: {error}. Run `dvc repro` there (the prepare "
                 "stage writes them) or set PROJECT_ROOT to a project that has them.")
        st.stop()


# ---- sidebar: service and model -------------------------------------------------------------------------------------
def sidebar_service(client: ScoringClient) -> None:
    st.sidebar.subheader("Scoring service")
    try:
        health = client.health()
    except ServiceError as error:
        st.sidebar.error(f"Unreachable: {client.base_url}", icon=":material/cloud_off:")
        st.sidebar.caption(f"HTTP {error.status}" if error.status else "nothing answers at this address")
        return
    st.sidebar.success(f"Up: {client.base_url}", icon=":material/cloud_done:")
    st.sidebar.caption(f"uptime {health.get('uptime_s', 0):,.0f} s · [API reference]({client.base_url}/docs)")
    try:
        info = model_info(client.base_url)
    except ServiceError as error:
        st.sidebar.warning(f"GET /model failed: {error}")
        return
    sidebar_model(info)


def sidebar_model(info: dict[str, Any]) -> None:
    metrics = info.get("metrics") or {}
    st.sidebar.subheader("Model")
    version = f"version {info['version']}" if info.get("version") else "pipeline model (not registered)"
    alias = f" · alias **{info['alias']}**" if info.get("alias") else ""
    st.sidebar.markdown(f"**{info.get('name', '?')}** · {version}{alias}  \n{info.get('model_family', '')} · "
                        f"{len(info.get('fields', []))} fields")
    left, right = st.sidebar.columns(2)
    left.metric("Threshold", f"{info['threshold']:.3f}", help="refused when probability >= threshold")
    right.metric("AUC", f"{metrics['auc']:.3f}" if "auc" in metrics else "—", help="holdout")
    left.metric("Business cost", f"{metrics['business_cost']:.3f}" if "business_cost" in metrics else "—",
                help="per applicant, on the holdout, at the threshold")
    right.metric("Approval rate", f"{metrics['approval_rate']:.0%}" if "approval_rate" in metrics else "—")
    if info.get("source"):
        st.sidebar.caption(f"source: `{info['source']}`")


# ---- applicant choice -----------------------------------------------------------------------------------------------
def initial_choice(ids: list[int]) -> Any:
    """`?applicant=<SK_ID_CURR>` (or `typical`) preselects; otherwise the first test applicant."""
    asked = st.query_params.get("applicant")
    if asked == TYPICAL:
        return TYPICAL
    if asked is not None and asked.isdigit() and int(asked) in set(ids):
        return int(asked)
    if asked is not None:
        st.toast(f"Applicant {asked} is not in the test set; showing {ids[0]}.")
    return ids[0]


def pick_applicant(frame: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    """(widget scope, the form's starting values): a test applicant's own values, or the typical applicant."""
    ids = frame["SK_ID_CURR"].astype(int).tolist()
    if "applicant" not in st.session_state:
        st.session_state["applicant"] = initial_choice(ids)
    if st.sidebar.button("Random applicant", icon=":material/casino:", width="stretch"):
        st.session_state["applicant"] = random.choice(ids)
    choice = st.sidebar.selectbox(
        f"Applicant (SK_ID_CURR, {len(ids):,} in the test set)", [TYPICAL, *ids], key="applicant",
        format_func=lambda v: "typical applicant (medians, modes)" if v == TYPICAL else str(v))
    st.query_params["applicant"] = str(choice)
    if choice == TYPICAL:
        return TYPICAL, form.typical_applicant(frame)
    return str(choice), request_schema.records(frame[frame["SK_ID_CURR"] == choice])[0]


# ---- results --------------------------------------------------------------------------------------------------------
def show_error(error: ServiceError) -> None:
    lines = []
    for item in error.problems:
        sent = f" (sent `{json.dumps(item['value'])}`)" if "value" in item else ""
        where = f"applicant {item['applicant']}: " if "applicant" in item else ""
        lines.append(f"- {where}**{item.get('field', '?')}**: {item.get('rule', '?')}{sent}")
    st.error("\n".join([str(error), "", *lines]), icon=":material/error:")


def decision_banner(result: dict[str, Any]) -> None:
    refused = result["decision"] == "refused"
    colour, mark = (charts.RED, "✗") if refused else (charts.GREEN, "✓")
    who = f"applicant {result['SK_ID_CURR']}" if result.get("SK_ID_CURR") is not None else "this applicant"
    comparison = "≥" if refused else "<"
    st.markdown(
        f'<div class="decision" style="background:{colour}">'
        f'<div class="who">Decision for {html.escape(who)}</div>'
        f'<div class="verdict">{mark} {result["decision"].capitalize()}</div>'
        f'<div class="why">probability of default {result["probability"]:.2%} {comparison} threshold '
        f'{result["threshold"]:.2%}</div></div>', unsafe_allow_html=True)


def show_score(result: dict[str, Any]) -> None:
    decision_banner(result)
    dial, facts = st.columns([3, 2], vertical_alignment="center")
    with dial:
        st.altair_chart(charts.gauge(result["probability"], result["threshold"]), width="content")
    with facts:
        gap = result["probability"] - result["threshold"]
        st.metric("Probability of default", f"{result['probability']:.2%}", f"{gap * 100:+.2f} pts vs threshold",
                  delta_color="inverse")
        st.caption(f"model version: {result.get('model_version') or 'pipeline model'}")
        if result.get("history_found"):
            st.caption(":material/history: credit history found: bureau, previous applications, instalments and "
                       "cards were used")
        else:
            st.caption(":material/history_toggle_off: no credit history for this SK_ID_CURR: scored on the "
                       "application alone")
    if result.get("reasons"):
        st.markdown("##### Why: the reasons that moved this score the most")
        st.altair_chart(charts.reasons_chart(result["reasons"]), width="stretch",
                        height=charts.reasons_height(len(result["reasons"])) + 70)
        st.markdown("\n".join(f"- **{r.get('code', '')}** {r['sentence']} ({r['contribution']:+.3f}; field "
                              f"`{r['feature']}`)" for r in result["reasons"]))


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def show_standing(frame: pd.DataFrame, applicant: dict[str, Any], per_row: int = 3) -> None:
    st.markdown("##### Where this applicant stands in the test population")
    table = population.standing(frame, applicant)
    features = population.KEY_FEATURES
    for start in range(0, len(features), per_row):
        for cell, feature, row in zip(st.columns(per_row), features[start:start + per_row],
                                      table.iloc[start:start + per_row].itertuples()):
            if row.missing:
                where, value = "missing", f"median {feature.show(row.median)}"
            else:
                where = f"{ordinal(round(row.percentile))} pct"
                value = f"{feature.show(row.value)} · median {feature.show(row.median)}"
            histogram = population.histogram(feature.values(frame[feature.column]))
            cell.markdown(f"**{feature.label}** :blue[{where}]  \n:small[:gray[{value}]]")
            cell.altair_chart(charts.standing_chart(histogram, row.value, feature.axis_format), width="stretch")


# ---- page -----------------------------------------------------------------------------------------------------------
STYLE = """<style>
.block-container {padding-top: 2.2rem}
.decision {color: white; border-radius: 12px; padding: 14px 20px; margin-bottom: 8px}
.decision .who {font-size: 0.9rem; opacity: 0.9}
.decision .verdict {font-size: 2.1rem; font-weight: 700; line-height: 1.2}
.decision .why {font-size: 1rem}
</style>"""


def raw_editor(body: dict[str, Any], scope: str) -> str | None:
    """The request as JSON, editable: sent as typed when asked, so the service's own checks can be tried."""
    text = json.dumps(body, indent=1, ensure_ascii=False)
    with st.expander("Request JSON: see it, edit it, send it as typed"):
        edited = st.text_area("POST /score body", text, height=260, key=f"raw:{scope}:{zlib.crc32(text.encode())}")
        if st.button("Send this JSON", icon=":material/upload:", key=f"send-raw:{scope}"):
            return edited
    return None


def sent_applicant(raw: str | None) -> dict[str, Any] | None:
    """The hand-edited body, when it is a JSON object (so the population view shows what was sent)."""
    try:
        parsed = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def main() -> None:
    st.set_page_config(page_title="Credit scoring tester", page_icon=":material/credit_score:", layout="wide")
    st.markdown(STYLE, unsafe_allow_html=True)
    client = ScoringClient(service_url())
    frame = population_or_stop()
    sidebar_service(client)
    sidebar_monitoring(population.project_root())
    scope, values = pick_applicant(frame)
    reasons = st.sidebar.slider("Reasons shown", 1, REASONS.max, REASONS.default)
    st.title("Credit scoring tester")
    st.caption("Every score comes from the scoring service's `POST /score`. The form is built from the data contract "
               "(ranges, categories); `*` marks a field the service requires; an empty field is sent as missing.")
    left, right = st.columns([5, 6], gap="large")
    with left:
        st.subheader("Applicant")
        body, _ = form.applicant_form(values, scope, frame)
        raw = raw_editor(body, scope)
    with right:
        st.subheader("Score")
        st.session_state["last_request"] = raw if raw is not None else body
        try:
            result = client.score_raw(raw, reasons) if raw is not None else client.score(body, reasons)
        except ServiceError as error:
            st.session_state["last_score"] = None
            show_error(error)
        else:
            st.session_state["last_score"] = result
            show_score(result)
        fairness_panel.show(population.project_root())
        show_standing(frame, sent_applicant(raw) or body)


main()
