"""DVC stage `generate`: the embedded default data, seven synthetic tables in Kaggle's schema."""
from __future__ import annotations

import logging

from scoring.config import configure_logging, generator_params, load_params, paths_from
from scoring.synthetic.dataset import generate_dataset

logger = logging.getLogger("stages.generate")


def main() -> None:
    configure_logging()
    params = load_params()
    rows = generate_dataset(generator_params(params), paths_from(params).synthetic)
    logger.info("synthetic tables: %s", ", ".join(f"{k} {v:,}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
