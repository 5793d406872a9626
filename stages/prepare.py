"""DVC stage `prepare`: validate the seven tables against the contract and write typed Parquet.

Reads the synthetic tables (data.source: synthetic) or Kaggle's CSVs in paths.raw (data.source: kaggle).
Exits with status 1 and one line per failed rule when the input breaks the contract; earlier outputs stay.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from scoring.config import configure_logging, load_params, paths_from
from scoring.data.prepare import ValidationFailed, prepare_tables

logger = logging.getLogger("stages.prepare")
SOURCES = ("synthetic", "kaggle")


def source_directory(params: dict) -> Path:
    source = params["data"]["source"]
    if source not in SOURCES:
        raise SystemExit(f"params.yaml data.source is {source!r}; use one of {SOURCES}")
    paths = paths_from(params)
    return paths.synthetic if source == "synthetic" else paths.raw


def main() -> None:
    configure_logging()
    params = load_params()
    paths = paths_from(params)
    try:
        result = prepare_tables(source_directory(params), paths.prepared, paths.reports)
    except ValidationFailed as failure:
        logger.error("%s", failure)
        sys.exit(1)
    tables = ", ".join(f"{r.table} {r.rows:,}" for r in result.reports)
    logger.info("validated and wrote %s to %s; report: %s", tables, paths.prepared,
                paths.reports / "validation.md")


if __name__ == "__main__":
    main()
