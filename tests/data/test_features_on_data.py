"""One feature code path: one applicant through `build_features` equals its row of the batch."""
import pandas as pd
import pytest

from scoring import features
from scoring.data.feature_table import read_features, write_features
from scoring.data.io import read_prepared


@pytest.fixture(scope="module")
def tables(small_dataset):
    return read_prepared(small_dataset)


@pytest.fixture(scope="module")
def history(tables):
    return features.history_features(tables)


def test_single_applicant_path_equals_batch_path(tables, history):
    apps = tables["application_train"]
    batch = features.build_features(apps, history)
    for position in (0, 17, 123, len(apps) - 1):
        one = features.build_features(apps.iloc[[position]], history)
        pd.testing.assert_frame_equal(one, batch.iloc[[position]], check_dtype=False)


def test_history_lookup_covers_applicants_of_both_tables(tables, history):
    ids = pd.concat([tables["application_train"].SK_ID_CURR, tables["application_test"].SK_ID_CURR])
    assert history.index.isin(ids).all()
    assert history.index.is_unique
    assert history.columns.str.match(f"^({'|'.join(features.HISTORY_SOURCES)})_").all()  # every column names its table


def test_features_ignore_target(tables, history):
    apps = tables["application_train"]
    flipped = apps.assign(TARGET=1 - apps.TARGET)
    pd.testing.assert_frame_equal(features.build_features(apps, history), features.build_features(flipped, history))


def test_holdout_split_is_stratified_and_disjoint(tables, history):
    apps = tables["application_train"]
    X = features.build_features(apps, history)
    fit, holdout = features.split_holdout(X, apps.set_index("SK_ID_CURR").TARGET, 0.2, 0)
    assert len(holdout) == pytest.approx(0.2 * len(X), abs=1) and not fit.index.intersection(holdout.index).size
    assert holdout.TARGET.mean() == pytest.approx(fit.TARGET.mean(), abs=0.005)


def test_features_written_chunk_by_chunk_equal_the_whole_table(tables, history, tmp_path):
    """featurize's files: built and written 997 applicants at a time (a chunk may lack every value of a category),
    read back equal to the table built whole and split, row order, columns and types included."""
    apps = tables["application_train"]
    whole = features.build_features(apps, history, ["CODE_GENDER"])
    fit, holdout = features.split_holdout(whole, apps.set_index("SK_ID_CURR").TARGET, 0.2, 0)
    fit_ids, holdout_ids = features.holdout_split(apps.SK_ID_CURR.to_numpy(), apps.TARGET.to_numpy(), 0.2, 0)
    lookup = features.HistoryLookup.from_frame(history)
    sparse = apps.assign(OCCUPATION_TYPE=apps.OCCUPATION_TYPE.where(apps.index >= 997))  # first chunk: all missing
    for ids, expected in ((fit_ids, fit), (holdout_ids, holdout)):
        written = write_features(apps, ids, lookup, ["CODE_GENDER"], tmp_path / "part.parquet", with_target=True,
                                 chunk_rows=997)
        assert written == expected.shape[1]
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "part.parquet"), expected)
    write_features(sparse, apps.SK_ID_CURR.to_numpy(), lookup, [], tmp_path / "sparse.parquet", chunk_rows=997)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sparse.parquet"),
                                  features.build_features(sparse, history))


def test_a_sample_of_a_feature_table_is_stratified_and_read_chunk_by_chunk(tables, history, tmp_path):
    """train's rows with compute.backend ray: `read_features(path, sample)` keeps that many rows, the default rate
    kept, each row exactly the table's (index, order, types); 0, or more rows than the table has, reads it all."""
    apps = tables["application_train"]
    lookup = features.HistoryLookup.from_frame(history)
    write_features(apps, apps.SK_ID_CURR.to_numpy(), lookup, [], tmp_path / "fit.parquet", with_target=True,
                   chunk_rows=997)
    whole = read_features(tmp_path / "fit.parquet")
    sample = read_features(tmp_path / "fit.parquet", 1500, seed=3)
    assert len(sample) == pytest.approx(1500, abs=1) and sample.index.is_unique
    assert sample.TARGET.mean() == pytest.approx(whole.TARGET.mean(), abs=0.002)
    assert list(whole.index.get_indexer(sample.index)) == sorted(whole.index.get_indexer(sample.index))
    pd.testing.assert_frame_equal(sample, whole.loc[sample.index])
    assert not sample.index.equals(read_features(tmp_path / "fit.parquet", 1500, seed=4).index)
    pd.testing.assert_frame_equal(read_features(tmp_path / "fit.parquet", len(whole) + 1), whole)
