"""DVC stage `featurize`: history lookup table, then features of the labelled (fit / holdout) and test applicants."""
from __future__ import annotations

import logging

from scoring import features
from scoring.config import configure_logging, load_params, paths_from
from scoring.data.io import read_prepared

logger = logging.getLogger("stages.featurize")


def main() -> None:
    configure_logging()
    params = load_params()
    paths, split = paths_from(params), params["split"]
    tables = read_prepared(paths.prepared)
    history = features.history_features(tables)
    train = tables["application_train"]
    labelled = features.build_features(train, history)
    fit, holdout = features.split_holdout(labelled, train.set_index("SK_ID_CURR")["TARGET"],
                                          split["holdout_fraction"], split["seed"])
    paths.features.mkdir(parents=True, exist_ok=True)
    history.to_parquet(paths.features / "history.parquet")
    fit.to_parquet(paths.features / "train.parquet")
    holdout.to_parquet(paths.features / "holdout.parquet")
    if "application_test" in tables:
        features.build_features(tables["application_test"], history).to_parquet(paths.features / "test.parquet")
    logger.info("features: %d columns (%d from histories); %d fit, %d holdout rows -> %s", labelled.shape[1],
                history.shape[1], len(fit), len(holdout), paths.features)


if __name__ == "__main__":
    main()
