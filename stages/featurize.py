"""DVC stage `featurize`: history lookup table (here, or on Ray: params.yaml `compute`), then features of the
labelled (fit / holdout) and test applicants."""
from __future__ import annotations

import logging

from scoring import features
from scoring.data.distributed import history_lookup
from scoring.data.io import read_prepared
from scoring.settings import configure_logging, load_settings

logger = logging.getLogger("stages.featurize")


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, split = settings.paths, settings.split
    history = history_lookup(paths.prepared, settings.compute)
    tables = read_prepared(paths.prepared, ("application_train", "application_test"))
    train = tables["application_train"]
    protected = settings.protected.fields
    labelled = features.build_features(train, history, protected)
    fit, holdout = features.split_holdout(labelled, train.set_index("SK_ID_CURR")["TARGET"],
                                          split.holdout_fraction, split.seed)
    paths.features.mkdir(parents=True, exist_ok=True)
    history.to_parquet(paths.history)
    fit.to_parquet(paths.train_features)
    holdout.to_parquet(paths.holdout_features)
    if "application_test" in tables:
        features.build_features(tables["application_test"], history, protected).to_parquet(paths.test_features)
    logger.info("features: %d columns (%d from histories); %d fit, %d holdout rows -> %s", labelled.shape[1],
                history.shape[1], len(fit), len(holdout), paths.features)


if __name__ == "__main__":
    main()
