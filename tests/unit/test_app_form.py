"""The tester app's pure helpers: the form is the contract's (every column once, its rules), the typical applicant is
valid for the API, and the population maths (sentinel, percentile, histogram) are right."""
import math

import numpy as np
import pandas as pd
import pytest

from app import form, population
from scoring import contract
from scoring.serving import request_schema

TABLE = contract.table(request_schema.APPLICANT_TABLE)


def test_main_fields_are_contract_columns_and_every_column_has_one_place():
    assert set(form.MAIN_FIELDS) <= set(TABLE.names)
    grouped = [c.name for cols in form.other_groups().values() for c in cols]
    assert sorted([*form.MAIN_FIELDS, *grouped, "SK_ID_CURR"]) == sorted(TABLE.names)
    assert len(grouped) == len(set(grouped))


@pytest.mark.parametrize("name", ["AMT_CREDIT", "DAYS_BIRTH", "DAYS_EMPLOYED", "CODE_GENDER", "EXT_SOURCE_1",
                                  "FLAG_MOBIL", "OCCUPATION_TYPE"])
def test_rules_and_choices_are_read_from_the_contract(name):
    col = TABLE.column(name)
    text = form.rule_text(col)
    assert ("required" in text.split(";")[0]) == (not col.nullable)
    for bound in (col.min, col.max):
        if bound is not None:
            assert f"{bound:g}" in text
    if col.sentinel is not None:
        assert f"{col.sentinel:g}" in text
    if col.kind in ("category", "flag"):
        options = form.choices(col)
        assert (options[0] is None) == col.nullable
        assert options[col.nullable:] == (list(col.categories) if col.kind == "category" else [0, 1])


def test_optional_numbers_are_the_nullable_numeric_columns():
    names = form.optional_numbers()
    assert "EXT_SOURCE_3" in names and "AMT_CREDIT" not in names and "CODE_GENDER" not in names
    assert all(TABLE.column(n).nullable for n in names)


def test_the_typical_applicant_is_a_valid_request():
    rows = 5
    frame = pd.DataFrame({c.name: [c.categories[i % len(c.categories)] for i in range(rows)] if c.kind == "category"
                          else [float(c.min if c.min is not None else 0)] * rows for c in TABLE.columns})
    frame["DAYS_BIRTH"] = [-12000, -15000, -20000, -9000, -30000]
    frame["DAYS_EMPLOYED"] = [contract.DAYS_SENTINEL, -100, -300, -200, contract.DAYS_SENTINEL]
    frame["EXT_SOURCE_1"] = np.nan
    typical = form.typical_applicant(frame)
    assert typical["DAYS_BIRTH"] == -15000 and isinstance(typical["DAYS_BIRTH"], int)
    assert typical["DAYS_EMPLOYED"] == -200, "the 'not applicable' sentinel is not a number to take the median of"
    assert typical["EXT_SOURCE_1"] is None and typical["SK_ID_CURR"] is None
    request_schema.applicant_adapter().validate_python(typical)


def test_key_features_drop_the_sentinel_and_turn_days_into_years():
    employed = next(f for f in population.KEY_FEATURES if f.column == "DAYS_EMPLOYED")
    values = employed.values(pd.Series([-365.25, contract.DAYS_SENTINEL, None]))
    assert values.iloc[0] == 1.0 and values.iloc[1:].isna().all()
    assert employed.value(contract.DAYS_SENTINEL) is None and employed.value("-365") is None
    assert employed.show(1.0) == "1.0 years"


def test_percentile_and_histogram():
    series = pd.Series([1.0, 2.0, 3.0, 4.0, None])
    assert population.percentile(series, 2.0) == 50.0
    assert population.percentile(series, None) is None
    hist = population.histogram(pd.Series(np.arange(1000, dtype=float)), bins=10)
    assert len(hist) == 10 and hist["count"].sum() == 1000
    assert math.isclose(hist["start"].iloc[0], 9.99) and math.isclose(hist["end"].iloc[-1], 989.01)
