"""Metric diff of a pull request: the pipeline on small synthetic data at the base and at the head, compared.

    python tools/pr_metrics_diff.py --base origin/main [--output diff.md]

Runs `dvc repro` with tools/small_params.yaml merged into params.yaml, in a worktree of the base commit and in the
current checkout, then prints `dvc metrics diff --md` (base -> head). CI posts the result as a PR comment.
MLflow tracking is switched off for these throwaway runs.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

logger = logging.getLogger("pr_metrics_diff")
SMALL = Path(__file__).with_name("small_params.yaml")


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) and key != "grids" else value
    return out


def use_small_params(root: Path) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params = merge(params, yaml.safe_load(SMALL.read_text()))
    params.setdefault("tracking", {})["enabled"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def small_run_commit(root: Path, label: str) -> str:
    """Run the small pipeline in `root` and commit its metrics on a detached HEAD; return that commit."""
    use_small_params(root)
    logger.info("dvc repro (%s) in %s", label, root)
    run(["dvc", "repro"], root)
    run(["git", "add", "-A", "params.yaml", "dvc.lock", "reports"], root)
    run(["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", f"small run ({label})",
         "--allow-empty"], root)
    return run(["git", "rev-parse", "HEAD"], root).strip()


def drift_summary(reports: Path) -> str:
    """The head's drift stage in two lines: what drifted between training data and production data."""
    path = reports / "drift.json"
    if not path.exists():
        return "No drift report (the pipeline has no drift stage at this commit)."
    drift = json.loads(path.read_text())
    columns = ", ".join(f"`{c}`" for c in drift.get("drifted_columns", [])) or "none"
    features = ", ".join(f"`{c}`" for c in drift.get("drifted_features", [])) or "none"
    return (f"**Drift** (training data against production data, {drift.get('rows', 0):,} rows): "
            f"{drift.get('n_drifted', 0)} of {drift.get('n_columns', 0)} application fields drifted ({columns}); "
            f"model features with PSI over the limit: {features}; prediction PSI {drift.get('prediction_psi', 0):.4f}"
            f"{' (prediction drift)' if drift.get('prediction_drift') else ''}.")


HIGHER_IS_BETTER = {"auc": ("AUC", True), "business_cost": ("business cost per applicant", False)}


def interval_summary(base: dict, head: dict) -> str:
    """Each headline figure, base -> head, judged against the head's bootstrap interval (metrics.json
    "intervals"): a move that leaves the base value inside that interval is reported as no change."""
    lines = []
    for key, (label, higher_is_better) in HIGHER_IS_BETTER.items():
        interval = head.get("intervals", {}).get(key)
        if key not in base or key not in head or interval is None:
            continue
        move = head[key] - base[key]
        if interval["low"] <= base[key] <= interval["high"]:
            verdict = "no change (within the interval)"
        else:
            verdict = "better" if (move > 0) == higher_is_better else "worse"
        level = head["intervals"].get("confidence", 0.95)
        lines.append(f"- {label}: {base[key]:.4f} -> {head[key]:.4f} ({move:+.4f}); head's {level:.0%} interval "
                     f"[{interval['low']:.4f}, {interval['high']:.4f}]: **{verdict}**")
    if not lines:
        return "No interval to judge the moves by (metrics.json without intervals at the head)."
    return "**Holdout figures against their bootstrap intervals**\n\n" + "\n".join(lines)


def read_metrics(reports: Path) -> dict:
    path = reports / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def metrics_diff(repo: Path, base_ref: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        base_dir, head_dir = Path(tmp) / "base", Path(tmp) / "head"
        run(["git", "worktree", "add", "--detach", str(base_dir), base_ref], repo)
        run(["git", "worktree", "add", "--detach", str(head_dir), "HEAD"], repo)
        try:
            base = small_run_commit(base_dir, "base")
            small_run_commit(head_dir, "head")
            table = run(["dvc", "metrics", "diff", base, "--md", "--precision", "4"], head_dir)
            drift = drift_summary(head_dir / "reports")
            verdicts = interval_summary(read_metrics(base_dir / "reports"), read_metrics(head_dir / "reports"))
        finally:
            for directory in (base_dir, head_dir):
                subprocess.run(["git", "worktree", "remove", "--force", str(directory)], cwd=repo)
    header = f"### Metrics of this pull request against `{base_ref}`\n\nSmall synthetic run (tools/small_params.yaml)"
    return f"{header}\n\n{table.strip() or 'No metric changed.'}\n\n{verdicts}\n\n{drift}\n"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git ref of the pull request's base (e.g. origin/main)")
    parser.add_argument("--output", type=Path, help="write the Markdown here (default: stdout)")
    args = parser.parse_args()
    report = metrics_diff(Path.cwd(), args.base)
    if args.output:
        args.output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
