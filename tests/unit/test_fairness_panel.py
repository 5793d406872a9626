"""The app's fairness summary: read from the evaluate stage's reports/fairness.json, one row per group."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from app import fairness_panel
from scoring.model import fairness
from scoring.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def test_the_report_is_read_from_the_project_and_tabled_with_intervals(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    assert fairness_panel.load_report(tmp_path) is None  # before the pipeline has run
    settings = load_settings(tmp_path / "params.yaml")
    rng = np.random.default_rng(0)
    groups = {"CODE_GENDER": rng.choice(np.array(["F", "M"], dtype=object), 600)}
    y = (rng.random(600) < 0.1).astype(float)
    report = fairness.assess(groups, y, np.full(600, 0.1), rng.random(600) < 0.3,
                             replace(settings.fairness, bootstrap=50))
    path = settings.under(tmp_path).paths.fairness_json
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(report))
    table = fairness_panel.group_table(fairness_panel.load_report(tmp_path))
    assert table["group"].tolist() == ["F", "M"]
    assert table["approval_ratio_interval"].str.fullmatch(r"\d\.\d\d to \d\.\d\d").all()
    assert (table["approval_ratio"] <= 1).all() and table["approval_ratio"].max() == 1
