"""The data contract against Kaggle's real rows (../shared): same columns in the same order, same kinds; every real
row within the plausibility bounds, whole where whole; the committed bounds are what tools/envelopes.py derives."""
import pandas as pd
import pytest

from scoring import contract
from tools import envelopes

from ..conftest import SHARED, shared_file

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


# ---- plausibility bounds on every real row ---------------------------------------------------------------------------
APPLICATION_FILES = {
    "application_train": ("application_train.csv", "coherent10k/application_train.csv.gz",
                          "idrange_100002_100999/application_train.csv.gz"),
    "application_test": ("application_test.csv.gz",),
}
ALL_FILES = {**APPLICATION_FILES, **envelopes.HISTORY_FILES}


@pytest.fixture(scope="module")
def real_envelopes() -> dict[str, envelopes.Envelope]:
    shared_file("application_test.csv.gz")
    return envelopes.real_envelopes(SHARED)


@pytest.mark.shared_data
@pytest.mark.parametrize("table", sorted(ALL_FILES))
def test_every_real_row_lies_within_the_bounds(table):
    spec = contract.table(table)
    for name in ALL_FILES[table]:
        frame = pd.read_csv(shared_file(name))
        assert not envelopes.outside(spec, envelopes.envelope(frame, spec)), name


@pytest.mark.shared_data
@pytest.mark.parametrize("table", sorted(APPLICATION_FILES))
def test_whole_number_columns_are_whole_in_the_real_rows(table):
    spec = contract.table(table)
    for name in APPLICATION_FILES[table]:
        frame = pd.read_csv(shared_file(name))
        for col in spec.columns:
            if col.whole:
                values = frame[col.name].dropna()
                assert (values == values.round()).all(), f"{name}: {col.name}"


@pytest.mark.shared_data
def test_the_committed_bounds_are_what_the_real_rows_give(real_envelopes):
    """`python -m tools.envelopes --check`: the numbers in scoring/contract.py follow from the rows and the rule."""
    assert envelopes.derive_all(real_envelopes) == contract.BOUNDS
    assert not envelopes.check_fit(contract.BOUNDS, real_envelopes)


@pytest.mark.shared_data
def test_the_samples_lack_the_full_files_extremes_that_the_bounds_cover(real_envelopes):
    """Why the published figures are needed: the real rows here stop far below Kaggle's full application_train."""
    real_income = real_envelopes["application"]["AMT_INCOME_TOTAL"][1]
    assert real_income < envelopes.KAGGLE_FULL_TRAIN["AMT_INCOME_TOTAL"][1] / 10
    assert contract.table("application_train").column("AMT_INCOME_TOTAL").max >= 2 * 117_000_000
