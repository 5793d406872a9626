"""Benchmark: wall time and peak memory of each pipeline stage, in a throwaway copy of the project.

    python bench/pipeline.py                                   # default params, every stage
    python bench/pipeline.py --applicants 307511 --test 48744 --stages generate prepare featurize
    python bench/pipeline.py --applicants 100000 --stages generate prepare featurize --backend local ray
    python bench/pipeline.py --applicants 1000000 --stages generate prepare featurize train --backend ray
    python bench/pipeline.py --applicants 1000000 --stages generate featurize --generated-as-prepared --backend ray

Each stage runs as its own process (`python -m stages.<name>`): its own peak RSS comes from the kernel (wait4); the
peak of the summed PSS of it and every process it started (Ray's GCS, raylet and workers with `compute.backend:
ray`; PSS counts the pages of Ray's shared object store once, not once per process mapping them) is sampled every
0.2 s, as is the largest single process's RSS. With several backends, the stages from prepare on
run once per backend on the same generated data. MLflow tracking is off.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "prepare", "featurize", "train", "threshold", "evaluate", "drift")


def copy_project(target: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)


def tree_memory(root: psutil.Process) -> tuple[int, int]:
    """(summed PSS, largest RSS) in bytes of a process and all its descendants now. PSS shares each shared page
    among the processes that map it: Ray's object store is mapped by the driver, the raylet and every worker, and
    summed RSS would count it once per process."""
    pss, rss = [], []
    for process in [root, *root.children(recursive=True)]:
        try:
            memory = process.memory_full_info()
        except psutil.Error:
            continue
        pss.append(memory.pss)
        rss.append(memory.rss)
    return sum(pss), max(rss, default=0)


def run_stage(stage: str, cwd: Path) -> tuple[float, float, float, float]:
    """(seconds, the stage process's peak RSS, peak summed PSS of its process tree, largest single process's RSS),
    MiB."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", f"stages.{stage}"], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    peaks = [0, 0]
    finished = threading.Event()

    def sample() -> None:
        tree = psutil.Process(process.pid)
        while not finished.wait(0.2):
            try:
                total, largest = tree_memory(tree)
            except psutil.Error:
                return
            peaks[0], peaks[1] = max(peaks[0], total), max(peaks[1], largest)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    finished.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"stage {stage} failed:\n{errors[-3000:]}")
    own = usage.ru_maxrss / 1024
    return seconds, own, max(peaks[0] / 2**20, own), max(peaks[1] / 2**20, own)


def set_backend(root: Path, backend: str) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["compute"]["backend"] = backend
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applicants", type=int, help="data.synthetic.n_applicants (default: params.yaml)")
    parser.add_argument("--test", type=int, help="data.synthetic.n_test (default: params.yaml)")
    parser.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    parser.add_argument("--generated-as-prepared", action="store_true",
                        help="featurize reads the generator's tables (already in prepare's types): no prepare")
    parser.add_argument("--backend", nargs="*", default=["local"], choices=("local", "ray"),
                        help="compute.backend of the stages from prepare on (each in turn)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        copy_project(root)
        params = yaml.safe_load((root / "params.yaml").read_text())
        synthetic = params["data"]["synthetic"]
        synthetic["n_applicants"] = args.applicants or synthetic["n_applicants"]
        synthetic["n_test"] = args.test or synthetic["n_test"]
        params["tracking"]["enabled"] = False
        if args.generated_as_prepared:
            params["paths"]["prepared"] = params["paths"]["synthetic"]
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        print(f"{synthetic['n_applicants']:,} training + {synthetic['n_test']:,} test applicants, "
              f"{os.cpu_count()} cores")
        print(f"{'stage':<10} {'backend':<8} {'seconds':>8} {'peak RSS MiB':>13} {'tree PSS MiB':>14} "
              f"{'largest MiB':>12}")
        early = [s for s in args.stages if s == "generate"]
        late = [s for s in args.stages if s not in early]
        runs = [(stage, "local") for stage in early] + [(stage, b) for b in args.backend for stage in late]
        for stage, backend in runs:
            set_backend(root, backend)
            seconds, own, tree, largest = run_stage(stage, root)
            print(f"{stage:<10} {backend:<8} {seconds:>8.1f} {own:>13,.0f} {tree:>14,.0f} {largest:>12,.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
