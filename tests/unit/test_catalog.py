"""The reason catalogue: every feature `features.build_features` can produce has a label, a family and a unit."""
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from scoring import catalog, features
from scoring.data.io import read_prepared
from scoring.settings import load_settings
from scoring.synthetic.dataset import generate_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, pd.DataFrame]:
    settings = load_settings(REPO / "params.yaml")
    small = replace(settings.data.synthetic, n_applicants=400, n_test=50, seed=3, chunk_size=4_000)
    out = tmp_path_factory.mktemp("catalog") / "tables"
    generate_dataset(small, out, progress=False)
    return read_prepared(out)


def test_every_feature_with_and_without_history_has_a_label(tables):
    apps = tables["application_train"]
    with_history = features.build_features(apps, features.history_features(tables))
    without = features.build_features(apps, features.history_features({"application_train": apps}))
    assert len(with_history.columns) > len(without.columns) > 100
    assert catalog.unlabelled(list(with_history.columns)) == []
    assert catalog.unlabelled(list(without.columns)) == []


def test_a_new_feature_without_a_label_is_reported():
    assert catalog.unlabelled(["EXT_SOURCE_2", "BURO_NEW_AGGREGATE_MAX"]) == ["BURO_NEW_AGGREGATE_MAX"]
    with pytest.raises(KeyError, match="feature_labels.csv"):
        catalog.entry("BURO_NEW_AGGREGATE_MAX")


def test_codes_are_stable_and_unique_and_related_features_share_one():
    codes = [code for code, _ in catalog.FAMILIES.values()]
    assert len(set(codes)) == len(codes) and codes == [f"R{i:02d}" for i in range(1, len(codes) + 1)]
    ext = {catalog.entry(f).code for f in [*features.EXT_SOURCES, "EXT_SOURCE_MEAN", "EXT_SOURCE_MISSING"]}
    assert ext == {"R01"}
    assert catalog.entry("DAYS_EMPLOYED").code == catalog.entry("DAYS_EMPLOYED_ANOMALY").code == "R02"
    assert catalog.entry("APARTMENTS_AVG").family == "HOUSING" and catalog.entry("FLAG_DOCUMENT_3").unit == "flag"


def test_grouping_sums_fields_into_families():
    group = catalog.grouping(["EXT_SOURCE_1", "AMT_CREDIT", "EXT_SOURCE_MEAN", "UNKNOWN_FIELD"])
    assert group.families == ["EXTERNAL", "LOAN", "UNKNOWN_FIELD"]
    assert group.codes == ["R01", "R05", "UNKNOWN_FIELD"]
    assert group.family_of.tolist() == [0, 1, 0, 2]
    assert (group.matrix.sum(axis=0) == [2, 1, 1]).all()


def test_units_agree_with_the_contract():
    """A categorical field reads as a category or a Y/N flag, a numeric one never as a category."""
    for name in features.APPLICATION_INPUTS:
        unit = catalog.entry(name).unit
        assert (unit in {"category", "flag"}) if name in features.CATEGORICAL else unit != "category", name
