"""Benchmark: wall time and peak memory of each pipeline stage, in a throwaway copy of the project.

    python bench/pipeline.py                                   # default params, every stage
    python bench/pipeline.py --applicants 307511 --test 48744 --stages generate prepare featurize

Each stage script runs as its own process; its peak RSS comes from the kernel (wait4). MLflow tracking is off.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "prepare", "featurize", "train", "threshold", "evaluate", "drift")


def copy_project(target: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)


def run_stage(stage: str, cwd: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one stage script."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, f"stages/{stage}.py"], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"stage {stage} failed:\n{process.stderr.read()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applicants", type=int, help="data.synthetic.n_applicants (default: params.yaml)")
    parser.add_argument("--test", type=int, help="data.synthetic.n_test (default: params.yaml)")
    parser.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        copy_project(root)
        params = yaml.safe_load((root / "params.yaml").read_text())
        synthetic = params["data"]["synthetic"]
        synthetic["n_applicants"] = args.applicants or synthetic["n_applicants"]
        synthetic["n_test"] = args.test or synthetic["n_test"]
        params["tracking"]["enabled"] = False
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        print(f"{synthetic['n_applicants']:,} training + {synthetic['n_test']:,} test applicants, "
              f"{os.cpu_count()} cores")
        print(f"{'stage':<10} {'seconds':>8} {'peak RSS MiB':>13}")
        total = 0.0
        for stage in args.stages:
            seconds, peak = run_stage(stage, root)
            total += seconds
            print(f"{stage:<10} {seconds:>8.1f} {peak:>13,.0f}", flush=True)
        print(f"{'total':<10} {total:>8.1f}")


if __name__ == "__main__":
    main()
