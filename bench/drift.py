"""Benchmark of monitoring: the drift stage on a large, hostile production log (bench/loop.py times the whole loop).

    python bench/drift.py [--rows 140000] [--files 1500] [--json FILE]

It writes a production log like the one a fuzzing and load session left (107,027 JSON lines in 1,450 gzip files and
33,300 rows in 50 Arrow streams for 140,000 rows; 10% test traffic; 1% of the rows with values the contract refuses:
1.8e308, 4.8e27, infinities, NaN, unknown categories, text in number fields; a few cut lines and a truncated file),
then runs `python -m stages.drift` on it in a throwaway project whose params.yaml points at this repository's pipeline
outputs (`dvc repro` first) and prints its wall time and peak RSS (the kernel's, wait4).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scoring.monitoring import production_log as pl  # noqa: E402
from scoring.settings import load_settings  # noqa: E402
from scoring.synthetic.outcomes import replayed_applicants  # noqa: E402

EXTREMES = (1.8e308, -1.8e308, 4.8e27, -5e15, 2.59e-42, 1e19)
NON_FINITE = (float("inf"), float("-inf"), float("nan"))
HOSTILE_FIELDS = ("DAYS_REGISTRATION", "AMT_REQ_CREDIT_BUREAU_MON", "AMT_CREDIT", "CNT_CHILDREN", "AMT_INCOME_TOTAL",
                  "DAYS_BIRTH", "EXT_SOURCE_2", "AMT_ANNUITY", "SK_ID_CURR")
BAD_CATEGORIES = ("NOT A CATEGORY", "", "x" * 300)


def hostile_rows(frame: pd.DataFrame, share: float, rng: np.random.Generator, finite: bool) -> pd.DataFrame:
    """A copy with `share` of the rows given one to three absurd values (non-finite ones only where `finite` is off:
    JSON has no infinity) and an unknown category in a tenth of them."""
    out = frame.astype({name: "float64" for name in HOSTILE_FIELDS} | {"ORGANIZATION_TYPE": object})
    rows = np.flatnonzero(rng.random(len(out)) < share)
    values = EXTREMES if finite else EXTREMES + NON_FINITE
    for row in rows:
        for name in rng.choice(HOSTILE_FIELDS, rng.integers(1, 4), replace=False):
            out.iloc[row, out.columns.get_loc(name)] = values[rng.integers(len(values))]
        if rng.random() < 0.1:
            out.iloc[row, out.columns.get_loc("ORGANIZATION_TYPE")] = BAD_CATEGORIES[rng.integers(3)]
    return out


def traffic_kinds(n: int, rng: np.random.Generator, test_share: float) -> np.ndarray:
    return np.where(rng.random(n) < test_share, "test", "production")


def write_lines_file(path: Path, frame: pd.DataFrame, kinds: np.ndarray, probability: np.ndarray, ts: str,
                     rng: np.random.Generator) -> None:
    """One gzip JSON-lines file as the service writes them, with text in a number field now and then and, in one
    file of fifty, a line cut short."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    lines = []
    for record, kind, p in zip(records, kinds, probability):
        if rng.random() < 0.002:
            record["AMT_CREDIT"] = "1e400 dollars"
        lines.append(pl.applicant_line(record, float(p), "refused" if p >= 0.08 else "granted", "5", str(kind), ts))
    body = b"".join(lines)
    if rng.random() < 0.02:
        body += lines[0][: len(lines[0]) // 2]
    path.write_bytes(gzip.compress(body, compresslevel=1))


def write_arrow_file(path: Path, frame: pd.DataFrame, kinds: np.ndarray, probability: np.ndarray, ts: str,
                     batch: int = 500) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pl.SCHEMA, options=pl.ARROW_OPTIONS) as writer:
        for start in range(0, len(frame), batch):
            part = slice(start, start + batch)
            arrays = [pa.array(frame[c.name].iloc[part].to_numpy(), from_pandas=True).cast(pl.SCHEMA.field(c.name).type)
                      if c.name in frame else pa.nulls(len(frame.iloc[part]), pl.SCHEMA.field(c.name).type)
                      for c in pl.APPLICATION.columns]
            n = len(frame.iloc[part])
            arrays += [pa.array([ts] * n), pa.array(["5"] * n), pa.array(probability[part]),
                       pa.array(np.where(probability[part] >= 0.08, "refused", "granted")),
                       pa.array(kinds[part].tolist())]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=pl.SCHEMA))
    path.write_bytes(sink.getvalue().to_pybytes())


def build_log(directory: Path, rows: int, files: int, seed: int = 0, hostile_share: float = 0.01,
              test_share: float = 0.1) -> dict[str, Any]:
    """A production log of `rows` applicants in `files` files (about 3/4 of the rows as JSON lines spread over all
    but 50 files, the rest in 50 Arrow streams), written as the service writes them."""
    rng = np.random.default_rng(seed)
    base = replayed_applicants(load_settings(REPO / "params.yaml").data.synthetic, 20_000, True, seed)
    base = base.drop(columns="TRUE_PD")
    arrow_files = min(50, files // 10)
    arrow_rows = rows * 33_300 // 140_000 if arrow_files else 0
    line_files = files - arrow_files
    directory.mkdir(parents=True, exist_ok=True)
    cuts = np.linspace(0, rows - arrow_rows, line_files + 1).astype(int)
    day = pd.Timestamp("2026-11-01", tz="UTC")
    for index in range(line_files):
        n = cuts[index + 1] - cuts[index]
        frame = base.sample(n, replace=True, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
        frame["SK_ID_CURR"] = 3_000_000 + cuts[index] + np.arange(n)
        ts = (day + pd.Timedelta(minutes=index * 20)).isoformat(timespec="milliseconds")
        write_lines_file(directory / f"requests-20261101T000000Z-{1000 + index}-0.jsonl.gz",
                         hostile_rows(frame, hostile_share, rng, finite=True), traffic_kinds(n, rng, test_share),
                         rng.beta(1.2, 12, n), ts, rng)
    for index, chunk in enumerate(np.array_split(np.arange(arrow_rows), arrow_files) if arrow_files else []):
        frame = base.sample(len(chunk), replace=True, random_state=index).reset_index(drop=True)
        frame["SK_ID_CURR"] = 5_000_000 + chunk
        ts = (day + pd.Timedelta(hours=index * 7)).isoformat(timespec="milliseconds")
        write_arrow_file(directory / f"batch-20261101T000000Z-{9000 + index}-0.arrows",
                         hostile_rows(frame, hostile_share, rng, finite=False),
                         traffic_kinds(len(chunk), rng, test_share), rng.beta(1.2, 12, len(chunk)), ts)
    truncate(next(directory.glob("batch-*.arrows"), None))
    return {"rows": rows, "files": len(list(directory.iterdir())),
            "megabytes": round(sum(p.stat().st_size for p in directory.iterdir()) / 1e6, 1)}


def truncate(path: Path | None) -> None:
    """Cut a file as a killed writer leaves it."""
    if path is not None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])


def project(root: Path, production: Path, outcomes: Path | None = None) -> Path:
    """A throwaway project: params.yaml pointing at this repository's pipeline outputs, its own reports/ (with
    evaluate's SHAP ranking and the training figures) and the given log folder; MLflow off."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name in ("raw", "synthetic", "prepared", "features", "models"):
        params["paths"][name] = str(REPO / params["paths"][name])
    reports = REPO / params["paths"]["reports"]
    params["paths"].update({"reports": str(root / "reports"), "production": str(production),
                            "outcomes": str(outcomes or root / "outcomes")})
    params["tracking"]["enabled"] = False
    (root / "reports" / "evaluate").mkdir(parents=True)
    shutil.copy(reports / "evaluate" / "shap_importance.csv", root / "reports" / "evaluate")
    for name in ("metrics.json", "threshold.json"):
        shutil.copy(reports / name, root / "reports")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def run_stage(stage: str, cwd: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of `python -m stages.<stage>` in `cwd`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLCONFIGDIR": str(cwd / ".matplotlib")}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", f"stages.{stage}"], cwd=cwd, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"stage {stage} failed:\n{process.stderr.read()[-4000:]}")
    return seconds, usage.ru_maxrss / 1024


def bench_stage(rows: int, files: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        log = build_log(root / "production", rows, files)
        print(f"log: {log['rows']:,} rows in {log['files']:,} files, {log['megabytes']} MB "
              f"(built in {time.perf_counter() - started:.0f} s)", flush=True)
        seconds, peak = run_stage("drift", project(root, root / "production"))
        report = json.loads((root / "reports" / "drift.json").read_text())["production"]
        result = {**log, "seconds": round(seconds, 1), "peak_rss_mib": round(peak),
                  "rows_logged": report.get("rows_logged"), "rows_tested": report.get("rows"),
                  "out_of_contract_fields": report.get("out_of_contract_fields"),
                  "first_ts": report.get("first_ts"), "last_ts": report.get("last_ts")}
        print(f"drift stage: {seconds:.1f} s, peak RSS {peak:,.0f} MiB; {result['rows_logged']:,} production rows "
              f"logged, {result['rows_tested']:,} tested; out of contract: {result['out_of_contract_fields']}")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=140_000, help="log rows")
    parser.add_argument("--files", type=int, default=1_500)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = bench_stage(args.rows, args.files)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

