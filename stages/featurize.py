"""DVC stage `featurize`: history lookup table (here, or on Ray: params.yaml `compute`), then features of the
labelled (fit / holdout) and test applicants, written chunk by chunk."""
from __future__ import annotations

import logging

from scoring import features
from scoring.data.distributed import history_lookup
from scoring.data.feature_table import write_features
from scoring.data.io import read_prepared
from scoring.settings import configure_logging, load_settings

logger = logging.getLogger("stages.featurize")


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, split, protected = settings.paths, settings.split, settings.protected.fields
    history = history_lookup(paths.prepared, settings.compute)
    lookup = features.HistoryLookup.from_frame(history)
    tables = read_prepared(paths.prepared, ("application_train", "application_test"))
    train = tables["application_train"]
    fit, holdout = features.holdout_split(train[features.KEY].to_numpy(), train["TARGET"].to_numpy(),
                                          split.holdout_fraction, split.seed)
    paths.features.mkdir(parents=True, exist_ok=True)
    history.to_parquet(paths.history)
    columns = write_features(train, fit, lookup, protected, paths.train_features, with_target=True)
    write_features(train, holdout, lookup, protected, paths.holdout_features, with_target=True)
    if "application_test" in tables:
        test = tables["application_test"]
        write_features(test, test[features.KEY].to_numpy(), lookup, protected, paths.test_features)
    logger.info("features: %d columns (%d from histories); %d fit, %d holdout rows -> %s", columns - 1,
                history.shape[1], len(fit), len(holdout), paths.features)


if __name__ == "__main__":
    main()
