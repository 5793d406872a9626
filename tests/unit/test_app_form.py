"""The tester app's pure helpers: the form is the contract's (every column once, its rules), the typical applicant is
valid for the API, and the population maths (sentinel, percentile, histogram) are right."""
import math

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

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
            assert contract.number(bound) in text
    if col.sentinel is not None:
        assert contract.number(col.sentinel) in text
    if col.kind in ("category", "flag"):
        options = form.choices(col)
        assert (options[0] is None) == col.nullable
        assert options[col.nullable:] == (list(col.categories) if col.kind == "category" else [0, 1])


def test_rule_text_states_the_plausibility_bounds_in_plain_numbers():
    text = form.rule_text(TABLE.column("AMT_INCOME_TOTAL"))
    assert ">= 0; <= 500000000" in text and "e+" not in text
    assert form.rule_text(TABLE.column("CNT_FAM_MEMBERS")).startswith("optional (empty = missing); whole number")


def render_number(name: str, value: float | None) -> None:
    """One contract column's number input, as the form draws it (run by AppTest in a script of its own)."""
    import pandas as pd

    from app import form
    from scoring import contract

    col = contract.table("application_test").column(name)
    entered = form.number_input(col, value, f"t:{name}", form.number_style(col, pd.DataFrame()))
    form.st.write(f"VALUE={entered!r}")


def number_widget(name: str, value: float | None) -> AppTest:
    return AppTest.from_function(render_number, args=(name, value), default_timeout=30).run()


def sent(app: AppTest) -> str:
    return next(m.value for m in app.markdown if m.value.startswith("VALUE=")).removeprefix("VALUE=")


@pytest.mark.parametrize("name,inside,absurd", [
    ("AMT_INCOME_TOTAL", 250_000.0, 1e15), ("AMT_CREDIT", 600_000.0, 1e308), ("CNT_CHILDREN", 3, 2**70),
    ("DAYS_EMPLOYED", -2_000, -1e15), ("CNT_FAM_MEMBERS", 4, 1e6), ("SK_ID_CURR", 100_002, 2**70),
])
def test_number_inputs_carry_the_contract_bounds_and_refuse_values_outside(name, inside, absurd):
    col = TABLE.column(name)
    app = number_widget(name, None)
    widget = app.number_input[0]
    assert (widget.min, widget.max) == (col.min, col.max)
    assert widget.value is None and sent(app) == "None"
    widget.set_value(inside).run()
    assert sent(app) == repr(inside), "a value inside the bounds is sent as entered"
    widget.set_value(absurd).run()
    assert sent(app) == "None", "a value outside the bounds is not taken: the widget falls back to its start value"


def test_whole_number_columns_get_integer_inputs_and_an_absurd_start_value_is_not_shown():
    app = number_widget("CNT_FAM_MEMBERS", 2.0)
    assert app.number_input[0].value == 2 and sent(app) == "2"
    app = number_widget("AMT_INCOME_TOTAL", 1e15)
    assert app.number_input[0].value is None, "a population value outside the bounds is shown as missing"


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
