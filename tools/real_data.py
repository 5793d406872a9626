"""The real-data lane: the visible real Kaggle rows of ../shared put into data/raw as a lender would put Kaggle's files,
and the figures of the pipeline run on them.

    python -m tools.real_data assemble [--application-only] [--shared DIR] [--raw data/raw]
    python -m tools.real_data figures [--reports reports]

`assemble` writes Kaggle-named files into the raw folder (replacing any table file already there):
application_train = application_train.csv + coherent10k + idrange_100002_100999, deduplicated by SK_ID_CURR
(12,703 applicants, TARGET 7.8%), the history tables that belong to them (coherent10k's bureau, bureau_balance and
credit_card_balance, idrange's previous_application) and the complete application_test. With --application-only,
the two application tables alone (the case of applicants scored without any history row). The rows are copied as
text, unchanged. `make real` and `make real-app-only` run it, then `dvc exp run -S data.source=kaggle` (DVC records
the raw files in dvc.lock, the `raw` stage), then `figures`. The real rows are for tests only: data/ is never
committed to git.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from scoring import contract
from scoring.data.io import SUFFIXES
from scoring.settings import configure_logging

logger = logging.getLogger("tools.real_data")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HOME_CREDIT_SHARED", ROOT.parent / "shared" / "data" / "home-credit"))
APPLICATIONS = ("application_train.csv", "coherent10k/application_train.csv.gz",
                "idrange_100002_100999/application_train.csv.gz")
"""The real training applicants, first file first when an SK_ID_CURR is in several (their rows agree)."""
HISTORIES = {"bureau": "coherent10k/bureau.csv.gz", "bureau_balance": "coherent10k/bureau_balance.csv.gz",
             "credit_card_balance": "coherent10k/credit_card_balance.csv.gz",
             "previous_application": "idrange_100002_100999/previous_application.csv.gz"}
TEST = "application_test.csv.gz"


def shared_path(shared: Path, relative: str) -> Path:
    path = shared / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the real rows live in ../shared/data/home-credit (or set "
                                "HOME_CREDIT_SHARED)")
    return path


def real_applications(shared: Path) -> pd.DataFrame:
    """Every visible real training applicant once, values kept as the files' text."""
    parts = [pd.read_csv(shared_path(shared, name), dtype=str, keep_default_na=False) for name in APPLICATIONS]
    apps = pd.concat(parts, ignore_index=True)
    unique = apps.drop_duplicates("SK_ID_CURR", keep="first")
    logger.info("application_train: %s rows from %d files, %d unique applicants", f"{len(apps):,}", len(parts),
                len(unique))
    return unique


def clear_tables(raw: Path) -> None:
    """Remove every Kaggle-named table file of the raw folder (other files are left alone)."""
    for table in contract.TABLES:
        for suffix in SUFFIXES:
            (raw / f"{table}{suffix}").unlink(missing_ok=True)


def assemble(shared: Path, raw: Path, histories: bool = True) -> dict[str, str]:
    """Fill `raw` with the real rows; returns table -> file written."""
    raw.mkdir(parents=True, exist_ok=True)
    clear_tables(raw)
    written = {"application_train": raw / "application_train.csv"}
    real_applications(shared).to_csv(written["application_train"], index=False)
    copies = {"application_test": TEST, **(HISTORIES if histories else {})}
    for table, relative in copies.items():
        target = raw / f"{table}.csv.gz"
        shutil.copyfile(shared_path(shared, relative), target)
        written[table] = target
    logger.info("%s: %s", raw, ", ".join(sorted(written)))
    return {table: str(path) for table, path in written.items()}


def interval(entry: dict[str, Any]) -> str:
    """A model's cross-validated figures: AUC and spread, and every interval the train report gives."""
    parts = []
    if "cv_auc" in entry:
        spread = f" ± {entry['cv_auc_std']:.4f}" if "cv_auc_std" in entry else ""
        parts.append(f"CV AUC {entry['cv_auc']:.4f}{spread}")
    for key, value in entry.items():
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
            parts.append(f"{key} [{value[0]:.4f}, {value[1]:.4f}]")
        elif isinstance(value, dict) and {"low", "high"} <= set(value):
            parts.append(f"{key} [{value['low']:.4f}, {value['high']:.4f}]")
    return ", ".join(parts)


def figures(reports: Path) -> str:
    """The run's figures as text: holdout AUC and cost (reports/metrics.json), the train report's CV figures."""
    metrics = json.loads((reports / "metrics.json").read_text())
    nan = float("nan")
    lines = [f"holdout ({metrics.get('n', 0):,} applicants): AUC {metrics['auc']:.4f}, "
             f"PR-AUC {metrics.get('pr_auc', nan):.4f}, business cost {metrics['business_cost']:.4f} per applicant "
             f"at threshold {metrics['threshold']:.3f} (at 0.5: {metrics.get('business_cost_at_0_5', nan):.4f}), "
             f"approval rate {metrics.get('approval_rate', nan):.1%}"]
    train_path = reports / "train.json"
    if train_path.exists():
        train = json.loads(train_path.read_text())
        lines.append(f"chosen model: {train.get('chosen', '?')}")
        lines += [f"  {name}: {interval(entry)}" for name, entry in train.get("models", {}).items()
                  if isinstance(entry, dict)]
        lines += [f"  {key}: {json.dumps(value)}" for key, value in train.items() if key not in ("chosen", "models")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    put = commands.add_parser("assemble", help="put the real rows into the raw folder")
    put.add_argument("--application-only", action="store_true", help="the application tables only, no history")
    put.add_argument("--shared", type=Path, default=SHARED, help=f"the real rows (default {SHARED})")
    put.add_argument("--raw", type=Path, default=Path("data/raw"), help="the raw folder (default data/raw)")
    show = commands.add_parser("figures", help="print the figures of the last pipeline run")
    show.add_argument("--reports", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    if args.command == "assemble":
        assemble(args.shared, args.raw, histories=not args.application_only)
    else:
        sys.stdout.write(figures(args.reports) + "\n")


if __name__ == "__main__":
    main()
