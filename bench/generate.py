"""Benchmark: generation time and peak memory of the synthetic data, at the default and at Kaggle's full size.

    python bench/generate.py                 # default size (params.yaml) and full Kaggle size
    python bench/generate.py --sizes 20000   # only the given numbers of training applicants

Each size runs in a fresh process so that its peak RSS is its own.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scoring.settings import load_settings  # noqa: E402
from scoring.synthetic.dataset import generate_dataset  # noqa: E402

KAGGLE_TRAIN, KAGGLE_TEST = 307_511, 48_744
logger = logging.getLogger("bench.generate")


def run_one(n_applicants: int, n_test: int, out: Path) -> None:
    settings = replace(load_settings(REPO / "params.yaml").data.synthetic, n_applicants=n_applicants, n_test=n_test)
    started = time.perf_counter()
    rows = generate_dataset(settings, out, progress=True)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mib = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(json.dumps({"n_applicants": n_applicants, "n_test": n_test, "seconds": round(seconds, 1),
                      "peak_rss_mib": round(peak_mib), "parquet_mib": round(size_mib), "rows": rows}))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20_000, KAGGLE_TRAIN])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        n_test = KAGGLE_TEST if args.one == KAGGLE_TRAIN else max(args.one // 4, 1)
        with tempfile.TemporaryDirectory() as tmp:
            run_one(args.one, n_test, Path(tmp) / "tables")
        return
    print(f"{'applicants':>11} {'seconds':>8} {'peak RSS MiB':>13} {'Parquet MiB':>12}  rows")
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(size)], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        total = sum(r["rows"].values())
        print(f"{r['n_applicants'] + r['n_test']:>11,} {r['seconds']:>8} {r['peak_rss_mib']:>13,} "
              f"{r['parquet_mib']:>12,}  {total:,} ({', '.join(f'{k} {v:,}' for k, v in r['rows'].items())})")


if __name__ == "__main__":
    main()
