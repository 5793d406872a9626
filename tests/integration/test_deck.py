"""The presentation deck, built by its command from a small pipeline run: its numbers are the reports' numbers."""
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE

from scoring.reporting.deck import MAX_SLIDES, build_deck
from scoring.settings import load_settings

pytestmark = pytest.mark.integration


def table_values(deck) -> dict[str, str]:
    """Label -> value of every two-column table row in the deck."""
    values = {}
    for slide in deck.slides:
        for shape in slide.shapes:
            if shape.has_table and len(shape.table.columns) == 2:
                for row in shape.table.rows:
                    values[row.cells[0].text] = row.cells[1].text
    return values


def deck_text(deck) -> str:
    return "\n".join(shape.text_frame.text for slide in deck.slides for shape in slide.shapes if shape.has_text_frame)


def copy_run(pipeline: Path, target: Path, ignore=None) -> None:
    """What the deck reads of a run: its reports and its dvc.yaml (the CI workflow is optional)."""
    shutil.copytree(pipeline / "reports", target / "reports", ignore=ignore)
    shutil.copy2(pipeline / "dvc.yaml", target / "dvc.yaml")


@pytest.fixture(scope="module")
def deck(small_pipeline: Path, tmp_path_factory):
    output = tmp_path_factory.mktemp("deck") / "deck.pptx"
    done = subprocess.run([sys.executable, "-m", "stages.deck", "--output", str(output)], cwd=small_pipeline,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return Presentation(str(output))


def test_slide_count(deck):
    assert 12 <= len(deck.slides) <= MAX_SLIDES


def test_headline_numbers_are_those_of_metrics_json(deck, small_pipeline):
    metrics = json.loads((small_pipeline / "reports/metrics.json").read_text())
    shown = table_values(deck)
    for label, key in (("AUC [95% bootstrap]", "auc"), ("Business cost / applicant", "business_cost")):
        value, low, high = (float(x) for x in re.findall(r"-?\d+\.\d+", shown[label]))  # "0.7412 [0.7301, 0.7519]"
        span = metrics["intervals"][key]
        assert value == pytest.approx(metrics[key], abs=5.1e-5)
        assert (low, high) == pytest.approx((span["low"], span["high"]), abs=5.1e-5) and low <= value <= high
    assert float(shown["Threshold"]) == pytest.approx(metrics["threshold"], abs=5.1e-4)


def test_charts_are_the_pipeline_pngs(deck, small_pipeline):
    pictures = [shape.image.blob for slide in deck.slides for shape in slide.shapes
                if shape.shape_type == MSO_SHAPE_TYPE.PICTURE]
    written = {path.read_bytes() for path in (small_pipeline / "reports").rglob("*.png")}
    assert len(pictures) >= 9 and all(blob in written for blob in pictures)


def test_without_a_serving_benchmark_the_deck_says_so_and_shows_no_latency(small_pipeline, tmp_path):
    copy_run(small_pipeline, tmp_path, ignore=shutil.ignore_patterns("serving.json"))
    settings = load_settings(small_pipeline / "params.yaml")
    text = deck_text(build_deck(settings, tmp_path))
    assert "Latency per request: not measured on this machine yet" in text
    assert "ms" not in text.split()


def test_serving_and_drift_figures_are_those_of_their_reports(small_pipeline, tmp_path):
    copy_run(small_pipeline, tmp_path)
    run = {"sequential": {"p50_ms": 2.71, "p99_ms": 6.0}, "c16": {"rps": 512.0, "errors": 0, "non_2xx": 0},
           "c64": {"rps": 498.0, "errors": 1, "non_2xx": 2}, "batch_no_reasons_per_s": 61234.0,
           "batch_3_reasons_per_s": 3456.0}
    base = {**run, "sequential": {"p50_ms": 2.2, "p99_ms": 5.0}, "c16": {"rps": 400.0, "errors": 0, "non_2xx": 0}}
    (tmp_path / "reports/serving.json").write_text(json.dumps({
        "date": "2026-11-25", "machine": "2 cores, x86_64", "baseline": "plain", "served": "ray",
        "results": {"plain": base, "ray": run}}))
    settings = load_settings(small_pipeline / "params.yaml")
    text = deck_text(build_deck(settings, tmp_path))
    assert "2.7 ms median one at a time (2.2 ms for plain uvicorn" in text
    assert "512 requests/s with 16 clients, 1.28× the plain server; 498/s with 64, 3 errors" in text
    assert "61,234 applicants/s without reasons, 3,456/s with three reasons" in text
    drift = json.loads((small_pipeline / "reports/drift.json").read_text())
    assert f"{drift['n_drifted']} of {drift['n_columns']} watched fields drifted" in text
    assert f"prediction PSI {drift['prediction_psi']:.3f}" in text


def test_a_rerun_with_other_reports_and_costs_updates_the_deck(small_pipeline, tmp_path):
    copy_run(small_pipeline, tmp_path)
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    metrics.update(auc=0.61234, business_cost=0.43219)
    (tmp_path / "reports/metrics.json").write_text(json.dumps(metrics))
    settings = load_settings(small_pipeline / "params.yaml")
    settings = replace(settings, cost=replace(settings.cost, fn=7.0))
    rebuilt = build_deck(settings, tmp_path)
    shown = table_values(rebuilt)
    assert shown["AUC [95% bootstrap]"].startswith("0.6123 [")
    assert shown["Business cost / applicant"].startswith("0.4322 [")
    assert "costs 7: the lender loses the loan" in deck_text(rebuilt)


def test_the_mlops_slide_lists_the_pipelines_stages_and_ci_jobs(deck, small_pipeline):
    stages = list(yaml.safe_load((small_pipeline / "dvc.yaml").read_text())["stages"])
    jobs = list(yaml.safe_load((small_pipeline / ".github/workflows/ci.yml").read_text())["jobs"])
    slide = next(s for s in deck.slides if any(sh.has_text_frame and sh.text_frame.text.startswith("MLOps")
                                               for sh in s.shapes))
    titles = [sh.text_frame.paragraphs[0].text for sh in slide.shapes if sh.has_text_frame and sh.text_frame.text]
    assert [t for t in titles if t in stages] == stages
    assert f"Workflow jobs: {', '.join(jobs)}." in "\n".join(sh.text_frame.text for sh in slide.shapes
                                                              if sh.has_text_frame)
