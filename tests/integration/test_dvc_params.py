"""dvc.yaml declares every params key each stage reads: the small pipeline's `dvc repro` ran with scoring.settings'
trace on, so each stage wrote the keys it actually read; a key read but not declared (itself or a section above it)
would let DVC skip the stage when that key changes."""
import json

import pytest
import yaml

from .conftest import TRACE_DIR

pytestmark = pytest.mark.integration


def covered(key: str, declared: list[str]) -> bool:
    return any(key == d or key.startswith(f"{d}.") for d in declared)


def test_every_stage_declares_the_params_it_read(small_pipeline):
    stages = yaml.safe_load((small_pipeline / "dvc.yaml").read_text())["stages"]
    traces = {path.stem: json.loads(path.read_text()) for path in (small_pipeline / TRACE_DIR).glob("*.json")}
    assert set(traces) == set(stages), f"no trace of {set(stages) - set(traces)}"
    undeclared = {stage: [k for k in read if not covered(k, stages[stage].get("params", []))]
                  for stage, read in traces.items()}
    assert not any(undeclared.values()), f"params read but not declared in dvc.yaml: {undeclared}"
    assert "train.oof_folds" in traces["train"] and "cost.fn" in traces["threshold"]
