import pandas as pd
import pytest

from scoring import contract
from scoring.data.io import arrow_schema, to_storage_types

from ..conftest import shared_file

REAL_SAMPLES = {
    "application_train": "application_train.csv",
    "bureau": "bureau.csv",
    "bureau_balance": "bureau_balance.csv",
    "previous_application": "previous_application.csv",
    "POS_CASH_balance": "POS_CASH_balance.csv",
    "installments_payments": "installments_payments.csv",
    "credit_card_balance": "credit_card_balance.csv",
}


@pytest.mark.shared_data
@pytest.mark.parametrize("table", sorted(REAL_SAMPLES))
def test_contract_columns_are_kaggles_in_kaggles_order(table):
    header = pd.read_csv(shared_file(REAL_SAMPLES[table]), nrows=0).columns.tolist()
    assert contract.table(table).names == header


@pytest.mark.shared_data
def test_test_table_is_train_without_target():
    header = pd.read_csv(shared_file("application_test.csv.gz"), nrows=0).columns.tolist()
    assert contract.table("application_test").names == header
    assert "TARGET" not in header


@pytest.mark.shared_data
@pytest.mark.parametrize("table", sorted(REAL_SAMPLES))
def test_contract_kinds_match_real_dtypes(table):
    real = pd.read_csv(shared_file(REAL_SAMPLES[table]))
    for col in contract.table(table).columns:
        is_text = real[col.name].dtype == object
        assert is_text == (col.kind == "category"), f"{table}.{col.name}: real dtype {real[col.name].dtype}"


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
