"""The data contract on its own: categories, Kaggle's anomalies, table lookup, storage types, plausibility bounds and
whole numbers (the margin rule of tools/envelopes.py on hand-made numbers; the real rows are in tests/data)."""
from pathlib import Path

import pandas as pd
import pytest

from scoring import contract
from scoring.data.io import arrow_schema, to_storage_types
from tools import envelopes


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


# ---- plausibility bounds ---------------------------------------------------------------------------------------------
APPLICATION_TABLES = ("application_train", "application_test")
ABSURD = [("DAYS_EMPLOYED", -1e15), ("AMT_INCOME_TOTAL", 1e15), ("AMT_CREDIT", 1e308), ("CNT_CHILDREN", 2.0**70),
          ("CNT_CHILDREN", 2**70), ("SK_ID_CURR", 2**70), ("DAYS_BIRTH", -1e6), ("OWN_CAR_AGE", 500),
          ("AMT_REQ_CREDIT_BUREAU_QRT", 1e9), ("CNT_FAM_MEMBERS", 0), ("DAYS_LAST_PHONE_CHANGE", -1e7)]


@pytest.mark.parametrize("table", APPLICATION_TABLES)
def test_every_numeric_application_column_has_both_bounds(table):
    for col in contract.table(table).columns:
        if col.is_numeric:
            assert col.min is not None and col.max is not None and col.min < col.max, col.name
            assert col.range_text().startswith(f"must be between {contract.number(col.min)} and ")


def test_every_history_number_is_bounded_and_bounds_keep_the_domain_side():
    for name in contract.HISTORY_TABLES:
        domain = contract.DOMAIN_TABLES[name]
        for col, rule in zip(contract.table(name).columns, domain.columns, strict=True):
            if col.is_numeric:
                assert col.min is not None and col.max is not None, f"{name}.{col.name}"
            for side in ("min", "max"):
                if getattr(rule, side) is not None:
                    assert getattr(col, side) == getattr(rule, side), f"{name}.{col.name}.{side}: domain rule kept"


def test_bounds_only_close_open_sides_of_contract_numbers():
    for key, bounds in contract.BOUNDS.items():
        domain = contract.DOMAIN_TABLES["application_train" if key == "application" else key]
        for name in bounds:
            assert envelopes.is_open(domain.column(name)), f"{key}.{name} is closed by its domain rule"


@pytest.mark.parametrize("name,value", ABSURD)
def test_absurd_values_of_the_issue_are_outside_the_contract(name, value):
    col = contract.table("application_test").column(name)
    assert col.rule_broken(value) == col.range_text()


@pytest.mark.parametrize("value,broken", [
    (2.59e-42, "must be a whole number"), (1.5, "must be a whole number"), (49.999, "must be a whole number"),
    (3, None), (3.0, None), (0, None), (float("nan"), "must be a finite number (no NaN or infinity)"),
    (float("inf"), "must be a finite number (no NaN or infinity)"),
])
def test_whole_number_columns_take_whole_values_only(value, broken):
    assert contract.table("application_test").column("CNT_CHILDREN").rule_broken(value) == broken


def test_whole_follows_the_kind_and_the_integral_float_columns():
    app = contract.table("application_train")
    assert all(app.column(n).whole for n in ("SK_ID_CURR", "TARGET", "CNT_CHILDREN", "FLAG_MOBIL", "DAYS_BIRTH"))
    assert all(app.column(n).whole and app.column(n).kind == "float" for n in contract.INTEGRAL_FLOAT_COLUMNS)
    assert not any(app.column(n).whole for n in ("AMT_INCOME_TOTAL", "AMT_ANNUITY", "EXT_SOURCE_1", "APARTMENTS_AVG"))
    assert app.column("CNT_FAM_MEMBERS").rule_broken(2.5) == "must be a whole number"
    assert app.column("AMT_ANNUITY").rule_broken(24700.5) is None


def test_sentinels_and_fractions_of_float_columns_pass():
    app = contract.table("application_test")
    assert app.column("DAYS_EMPLOYED").rule_broken(contract.DAYS_SENTINEL) is None
    assert app.column("DAYS_EMPLOYED").rule_broken(-17_912) is None
    assert "(or 365243, 'not applicable')" in app.column("DAYS_EMPLOYED").range_text()
    assert app.column("REGION_RATING_CLIENT_W_CITY").rule_broken(-1) is None
    assert app.column("EXT_SOURCE_2").rule_broken(0.5) is None


def test_kaggle_full_file_extremes_lie_inside_the_contract():
    app = contract.table("application_train")
    for name, sides in envelopes.KAGGLE_FULL_TRAIN.items():
        for value in sides:
            if value is not None:
                assert app.column(name).rule_broken(value) is None, f"{name} = {value} (Kaggle's full file)"


@pytest.mark.parametrize("value,expected", [
    (1, 1), (1.01, 2), (2, 2), (2.5, 5), (8.1, 10), (40, 50), (234_000_000, 500_000_000), (0.0818, 0.1),
    (516_051, 1_000_000), (50, 50),
])
def test_nice_ceiling_is_the_next_1_2_5_number(value, expected):
    assert envelopes.nice_ceiling(value) == expected


def test_margin_rule_on_a_hand_made_table():
    """Twice the largest magnitude, rounded up to 1-2-5; time spans stop at 100 years; domain sides are kept; history
    tables take 100 times, and a column without a sign rule gets a symmetric range."""
    hand = contract.Table("application_train", (
        contract.Column("AMT_INCOME_TOTAL", "float", min=0), contract.Column("CNT_FAM_MEMBERS", "float", min=1),
        contract.Column("DAYS_REGISTRATION", "float", max=0), contract.Column("DAYS_ID_PUBLISH", "int", max=0),
        contract.Column("OWN_CAR_AGE", "float", min=0), contract.Column("EXT_SOURCE_1", "float", min=0, max=1),
        contract.Column("SK_ID_CURR", "key", min=1),
    ))
    env = {"AMT_INCOME_TOTAL": (25_650, 4_410_000), "CNT_FAM_MEMBERS": (1, 21), "DAYS_REGISTRATION": (-23_722, 0),
           "DAYS_ID_PUBLISH": (-6_348, 0), "OWN_CAR_AGE": (0, 74), "EXT_SOURCE_1": (0.01, 0.94)}
    known = {"AMT_INCOME_TOTAL": (None, 117_000_000), "DAYS_REGISTRATION": (-24_672, None)}
    assert envelopes.derive(hand, envelopes.widen(env, known), factor=2, spans=True) == {
        "AMT_INCOME_TOTAL": (0, 500_000_000),     # 2 x 117,000,000 = 234,000,000 -> 500,000,000
        "CNT_FAM_MEMBERS": (1, 50),               # 2 x 21 = 42 -> 50; the domain minimum 1 stays
        "DAYS_REGISTRATION": (-36_600, 0),        # 2 x 24,672 -> 50,000, beyond 100 years: -36,600
        "DAYS_ID_PUBLISH": (-20_000, 0),          # 2 x 6,348 -> 20,000
        "OWN_CAR_AGE": (0, 100),                  # 2 x 74 -> 200, beyond 100 years: 100
    }
    history = contract.Table("bureau", (contract.Column("AMT_CREDIT_SUM_DEBT", "float"),
                                        contract.Column("MONTHS_BALANCE", "int", max=0)))
    assert envelopes.derive(history, {"AMT_CREDIT_SUM_DEBT": (-619_909, 23_577_682.5),
                                      "MONTHS_BALANCE": (-96, 0)}, factor=100) == {
        "AMT_CREDIT_SUM_DEBT": (-5_000_000_000, 5_000_000_000), "MONTHS_BALANCE": (-10_000, 0)}
    with pytest.raises(ValueError, match="no real value"):
        envelopes.derive(history, {}, factor=100)


def test_the_bounds_block_of_the_source_is_the_bounds_table():
    """Hand edits of BOUNDS show: the block in scoring/contract.py must be what the tool renders from it."""
    source = Path(contract.__file__).read_text()
    assert envelopes.current_block(source) == envelopes.render(contract.BOUNDS)
