"""The fairness summary of the model the pipeline evaluated (reports/fairness.json, written by evaluate): the gate's
verdict, what broke it, and approval, refused good clients and calibration by protected group and age band."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from scoring.model import fairness
from scoring.settings import load_settings


def load_report(root: Path) -> dict[str, Any] | None:
    """The evaluate stage's fairness report, or None before the pipeline has run."""
    path = load_settings(root / "params.yaml").under(root).paths.fairness_json
    return json.loads(path.read_text()) if path.exists() else None


def group_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per group, rates as percentages, the approval ratio with its bootstrap interval."""
    table = fairness.table(report)
    intervals = {(name, g["group"]): f"{g['approval_ratio']['low']:.2f} to {g['approval_ratio']['high']:.2f}"
                 for name, a in report["attributes"].items() for g in a["groups"]
                 if g["approval_ratio"]["low"] is not None}
    table.insert(5, "approval_ratio_interval", [intervals.get((a, g), "") for a, g in zip(table.attribute,
                                                                                          table.group)])
    return table


def show(root: Path) -> None:
    """An expander with the verdict, the violations and the table (nothing when the report is absent)."""
    report = load_report(root)
    with st.expander("Fairness gate of the pipeline's model", icon=":material/balance:"):
        if report is None:
            st.caption("No reports/fairness.json yet: run the pipeline (`dvc repro evaluate`).")
            return
        (st.success if report["passed"] else st.error)(f"Fairness gate {report['summary']}")
        limits = report["thresholds"]
        st.caption(f"Approval ratio at least {limits['min_approval_ratio']} (four-fifths rule), refused good "
                   f"clients at most {limits['max_opportunity_gap']:.0%} above the lowest group, calibration gap "
                   f"at most {limits['max_calibration_gap']}; groups under {limits['min_group_size']} applicants are "
                   "not gated. A failed gate keeps the model from becoming champion.")
        st.dataframe(group_table(report), hide_index=True)
