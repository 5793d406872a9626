"""The fairness gate: the four-fifths rule, equal opportunity and calibration by group, with bootstrap intervals; a
deliberately biased model fails the gate and stays challenger in the registry, with the reason as a tag."""
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from scoring.model import fairness, tracking

from ..conftest import SETTINGS

ALL = ["approval_ratio", "opportunity_gap", "calibration_gap"]
P = replace(SETTINGS.fairness, min_group_size=50, bootstrap=200,
            gated={"group": ALL, "CODE_GENDER": ALL, "age_band": ALL})


def hand_made() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group A: 100 applicants, 80 granted; B: 100, 60 granted; C: 10 (too few to gate), none granted. Defaults: 20
    in A (all refused), 20 in B (all refused), so B refuses 20 of its 80 good clients and A none."""
    groups = np.array(["A"] * 100 + ["B"] * 100 + ["C"] * 10, dtype=object)
    refused = np.r_[np.arange(100) < 20, np.arange(100) < 40, np.ones(10, dtype=bool)]
    y = np.r_[np.arange(100) < 20, np.arange(100) < 20, np.zeros(10, dtype=bool)].astype(float)
    proba = np.where(y == 1, 0.6, 0.1)
    return groups, y, proba, refused


def test_four_fifths_rule_and_equal_opportunity_on_a_hand_made_table():
    groups, y, proba, refused = hand_made()
    report = fairness.assess({"group": groups}, y, proba, refused, P)
    rows = {g["group"]: g for g in report["attributes"]["group"]["groups"]}
    assert rows["A"]["approval_rate"]["value"] == 0.8 and rows["B"]["approval_rate"]["value"] == 0.6
    assert rows["A"]["approval_ratio"]["value"] == 1.0 and rows["B"]["approval_ratio"]["value"] == 0.75
    assert rows["B"]["good_refused_share"]["value"] == 0.25 and rows["B"]["opportunity_gap"]["value"] == 0.25
    assert rows["A"]["opportunity_gap"]["value"] == 0.0
    assert rows["C"]["approval_ratio"]["value"] == 0.0 and not rows["C"]["gated"]  # reported, not gated
    low, high = rows["B"]["approval_ratio"]["low"], rows["B"]["approval_ratio"]["high"]
    assert low < 0.75 < high and high - low < 0.5
    broken = {(v["group"], v["measure"]) for v in report["violations"]}
    assert broken == {("B", "approval_ratio"), ("B", "opportunity_gap")}
    assert not report["passed"] and report["summary"].startswith("failed: group B")
    assert set(fairness.table(report)["group"]) == {"A", "B", "C"}


def test_an_ungated_attribute_is_reported_but_cannot_fail():
    groups, y, proba, refused = hand_made()
    report = fairness.assess({"group": groups}, y, proba, refused, replace(P, gated={}))
    assert report["passed"] and report["attributes"]["group"]["violations"] == []
    only_opportunity = fairness.assess({"group": groups}, y, proba, refused, replace(P, gated={"group": ALL[1:]}))
    assert [v["measure"] for v in only_opportunity["violations"]] == ["opportunity_gap"]
    with pytest.raises(ValueError, match="unknown measure"):
        fairness.assess({"group": groups}, y, proba, refused, replace(P, gated={"group": ["approval"]}))


def applicants(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"CODE_GENDER": rng.choice(np.array(["F", "M"]), n),
                         "DAYS_BIRTH": -rng.uniform(20, 70, n) * 365.25})


def test_a_deliberately_biased_model_fails_the_gate_and_a_fair_one_passes():
    rng = np.random.default_rng(0)
    apps = applicants(4_000, rng)
    risk = rng.uniform(0.02, 0.3, len(apps))
    y = (rng.random(len(apps)) < risk).astype(float)
    groups = fairness.protected_groups(apps, SETTINGS.protected)
    assert set(groups["age_band"]) <= {"18-29", "30-39", "40-49", "50-59", "60-99"}
    fair = fairness.assess(groups, y, risk, risk >= 0.2, P)
    assert fair["passed"], fair["violations"]
    biased_proba = np.clip(risk + 0.25 * (apps["CODE_GENDER"].to_numpy() == "M"), 0, 1)
    biased = fairness.assess(groups, y, biased_proba, biased_proba >= 0.2, P)
    measures = {v["measure"] for v in biased["violations"] if v["attribute"] == "CODE_GENDER"}
    assert not biased["passed"] and measures == {"approval_ratio", "opportunity_gap", "calibration_gap"}
    assert all(v["group"] == "M" for v in biased["violations"] if v["attribute"] == "CODE_GENDER")


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    client = MlflowClient()
    client.create_registered_model(tracking.MODEL_NAME)
    yield client
    mlflow.set_tracking_uri(None)


def test_a_failed_gate_keeps_the_cheaper_version_from_becoming_champion(registry, tmp_path):
    versions = [registry.create_model_version(tracking.MODEL_NAME, str(tmp_path), run_id=None).version
                for _ in range(2)]
    costs = {tracking.version_uri(versions[0]): 0.5, tracking.version_uri(versions[1]): 0.4}
    costs[tracking.champion_uri()] = 0.5
    assert tracking.assign_alias(versions[0], 0.1, costs.__getitem__) == tracking.CHAMPION
    reason = "fairness gate failed: CODE_GENDER M: approval_ratio 0.6"
    assert tracking.assign_alias(versions[1], 0.1, costs.__getitem__, blocked=reason) == tracking.CHALLENGER
    assert registry.get_model_version_by_alias(tracking.MODEL_NAME, tracking.CHAMPION).version == versions[0]
    assert registry.get_model_version(tracking.MODEL_NAME, versions[1]).tags["champion_blocked"] == reason
    assert tracking.assign_alias(versions[1], 0.1, costs.__getitem__) == tracking.CHAMPION  # cheaper, not blocked
