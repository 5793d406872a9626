"""DVC stage `deck`: the presentation deck (PowerPoint), every number and chart read from the pipeline's reports.

    python -m stages.deck [--params params.yaml] [--output reports/deck.pptx]
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from scoring.reporting.deck import build_deck
from scoring.settings import PARAMS_FILE, configure_logging, load_settings

logger = logging.getLogger("stages.deck")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the presentation deck from reports/ and params.yaml.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE, help="params.yaml of the run to present")
    parser.add_argument("--output", type=Path, help="where to write the .pptx (default: the catalog's deck)")
    args = parser.parse_args(argv)
    configure_logging()
    settings = load_settings(args.params)
    root = args.params.parent
    output = args.output or root / settings.paths.deck
    deck = build_deck(settings, root)
    output.parent.mkdir(parents=True, exist_ok=True)
    deck.save(output)
    logger.info("deck of %d slides -> %s", len(deck.slides), output)


if __name__ == "__main__":
    main()
