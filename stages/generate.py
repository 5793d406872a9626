"""DVC stage `generate`: the embedded default data, seven synthetic tables in Kaggle's schema.

With `data.source: kaggle` nothing is generated: prepare reads paths.raw, so the stage leaves an empty
paths.synthetic (DVC still needs its output) in about a second instead of building applicants for nothing.
"""
from __future__ import annotations

import logging

from scoring.data.io import replaced_directory
from scoring.settings import configure_logging, load_settings
from scoring.synthetic.dataset import generate_dataset

logger = logging.getLogger("stages.generate")


def main() -> None:
    configure_logging()
    settings = load_settings()
    if settings.data.source != "synthetic":
        with replaced_directory(settings.paths.synthetic):
            pass
        logger.info("data.source is %s: nothing generated (prepare reads the raw folder)", settings.data.source)
        return
    rows = generate_dataset(settings.data.synthetic, settings.paths.synthetic)
    logger.info("synthetic tables: %s", ", ".join(f"{k} {v:,}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
