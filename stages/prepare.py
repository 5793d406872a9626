"""DVC stage `prepare`: validate the seven tables against the contract and write typed Parquet.

Reads the synthetic tables (data.source: synthetic) or Kaggle's CSVs in paths.raw (data.source: kaggle).
With `compute.backend: ray` the tables are validated block by block on Ray (scoring/data/ray_prepare.py).
Exits with status 1 and one line per failed rule when the input breaks the contract; earlier outputs stay.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from scoring.data.prepare import ValidationFailed, prepare_tables
from scoring.settings import Settings, configure_logging, load_settings

logger = logging.getLogger("stages.prepare")


def source_directory(settings: Settings) -> Path:
    """Where data.source says the raw tables are."""
    return settings.paths.synthetic if settings.data.source == "synthetic" else settings.paths.raw


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths = settings.paths
    try:
        result = prepare_tables(source_directory(settings), paths.prepared, paths.reports, compute=settings.compute)
    except ValidationFailed as failure:
        logger.error("%s", failure)
        sys.exit(1)
    tables = ", ".join(f"{r.table} {r.rows:,}" for r in result.reports)
    logger.info("validated and wrote %s to %s; report: %s", tables, paths.prepared, paths.validation_report)


if __name__ == "__main__":
    main()
