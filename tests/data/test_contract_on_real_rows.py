"""The data contract against Kaggle's real rows (../shared): same columns in the same order, same kinds."""
import pandas as pd
import pytest

from scoring import contract

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
