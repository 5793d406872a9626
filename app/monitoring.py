"""The app's monitoring section: what the last `dvc repro` said about drift and realised performance (read from the
reports the drift and performance stages wrote under PROJECT_ROOT; nothing is computed here)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from scoring.settings import load_settings

ICONS = {"stable": ":material/check_circle:", "degraded": ":material/warning:",
         "retrain_recommended": ":material/error:", "insufficient_outcomes": ":material/hourglass_empty:"}


def read_report(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summary(root: Path) -> dict[str, Any]:
    """The verdict, its reasons, the realised figures and the production drift, or None where a stage has not run."""
    paths = load_settings(root / "params.yaml").under(root).paths
    performance, drift = read_report(paths.performance_json), read_report(paths.drift_json)
    production = (drift or {}).get("production") or {}
    overall = (performance or {}).get("overall") or {}
    return {"verdict": performance["verdict"] if performance else None,
            "reasons": (performance or {}).get("reasons", []), "outcomes": overall.get("n", 0),
            "auc": (overall.get("auc") or {}).get("value"),
            "training_auc": ((performance or {}).get("training") or {}).get("auc"),
            "drifted": production.get("drifted_columns"), "out_of_contract": production.get("out_of_contract_fields"),
            "logged": production.get("rows_logged", production.get("rows", 0)),
            "window": (production.get("first_ts"), production.get("last_ts"))}


def sidebar_monitoring(root: Path) -> None:
    """Sidebar: the performance verdict (a script gates on the same JSON) and the production log's drift."""
    facts = summary(root)
    st.sidebar.subheader("Monitoring")
    if facts["verdict"] is None:
        st.sidebar.caption("no performance report yet: drop outcomes in data/outcomes, then `dvc repro performance`")
    else:
        text = facts["verdict"].replace("_", " ")
        (st.sidebar.success if facts["verdict"] == "stable" else st.sidebar.warning)(
            f"Performance: {text}", icon=ICONS.get(facts["verdict"]))
        auc = (f" · AUC {facts['auc']:.3f} (training {facts['training_auc']:.3f})"
               if facts["auc"] is not None and facts["training_auc"] is not None else "")
        st.sidebar.caption(f"{facts['outcomes']:,} outcomes{auc}" + "".join(f"  \n{r}" for r in facts["reasons"]))
    if facts["drifted"] is not None:
        st.sidebar.caption(f"production log: {facts['logged']:,} applicants, {facts['window'][0] or '?'} → "
                           f"{facts['window'][1] or '?'}; drifted: {', '.join(facts['drifted']) or 'none'}"
                           + (f"; out of contract: {', '.join(facts['out_of_contract'])}"
                              if facts["out_of_contract"] else ""))
