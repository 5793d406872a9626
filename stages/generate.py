"""DVC stage `generate`: the embedded default data, seven synthetic tables in Kaggle's schema."""
from __future__ import annotations

import logging

from scoring.settings import configure_logging, load_settings
from scoring.synthetic.dataset import generate_dataset

logger = logging.getLogger("stages.generate")


def main() -> None:
    configure_logging()
    settings = load_settings()
    rows = generate_dataset(settings.data.synthetic, settings.paths.synthetic)
    logger.info("synthetic tables: %s", ", ".join(f"{k} {v:,}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
