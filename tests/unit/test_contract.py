"""The data contract on its own: categories, Kaggle's anomalies, table lookup, storage types."""
import pandas as pd
import pytest

from scoring import contract
from scoring.data.io import arrow_schema, to_storage_types


def test_every_category_column_lists_its_categories():
    for table in contract.TABLES.values():
        for col in table.columns:
            assert (col.kind == "category") == (col.categories is not None), f"{table.name}.{col.name}"
            if col.categories:
                assert len(set(col.categories)) == len(col.categories), f"duplicate category in {col.name}"


def test_known_kaggle_anomalies_are_in_the_contract():
    app = contract.table("application_train")
    assert app.column("DAYS_EMPLOYED").sentinel == contract.DAYS_SENTINEL
    assert "XNA" in app.column("CODE_GENDER").categories
    assert "XNA" in app.column("ORGANIZATION_TYPE").categories
    assert app.column("TARGET").min == 0 and app.column("TARGET").max == 1
    assert not app.column("SK_ID_CURR").nullable and app.primary_key == "SK_ID_CURR"


def test_unknown_table_names_the_known_ones():
    with pytest.raises(KeyError, match="application_train"):
        contract.table("applications")


def test_arrow_schema_and_storage_types_follow_the_contract():
    schema = arrow_schema("bureau_balance")
    assert schema.names == ["SK_ID_BUREAU", "MONTHS_BALANCE", "STATUS"]
    frame = pd.DataFrame({"SK_ID_BUREAU": [5, 6], "MONTHS_BALANCE": [0, -1], "STATUS": ["C", None], "EXTRA": [1, 2]})
    typed = to_storage_types(frame, "bureau_balance")
    assert list(typed.columns) == ["SK_ID_BUREAU", "MONTHS_BALANCE", "STATUS"]
    assert typed["STATUS"].dtype == "category" and typed["STATUS"].isna().tolist() == [False, True]
    assert typed["MONTHS_BALANCE"].dtype == "int64"
