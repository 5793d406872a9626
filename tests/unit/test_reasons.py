"""The one reasons function: the k largest |contributions| of each row (related fields summed into one reason),
strongest first, with the values of those fields, rendered as API records (a prefix per applicant) and as table
columns, in words a loan officer can read."""
import numpy as np
import pytest

from scoring import catalog
from scoring.serving.reasons import FEW_REASONS, statement, top_reasons

FIELDS = ["A", "B", "C", "D"]
VALUES = {"A": np.array([1.0, np.nan]), "B": np.array(["x", None], dtype=object), "C": np.array([3, 4]),
          "D": np.array([0.5, 0.25])}
CONTRIBUTIONS = np.array([[0.1, -0.9, 0.3, 0.0], [-0.2, 0.05, 0.0, 0.7]])


def test_top_k_per_row_strongest_first_with_values():
    reasons = top_reasons(CONTRIBUTIONS, FIELDS, VALUES, 3)
    assert reasons.fields.tolist() == [["B", "C", "A"], ["D", "A", "B"]]
    assert reasons.values.tolist() == [["x", 3, 1.0], [0.25, None, None]]
    np.testing.assert_array_equal(reasons.contributions, [[-0.9, 0.3, 0.1], [0.7, -0.2, 0.05]])


def test_records_take_a_prefix_per_applicant_and_say_the_direction():
    records = top_reasons(CONTRIBUTIONS, FIELDS, VALUES, 3).records([1, 3])
    assert [len(r) for r in records] == [1, 3]
    assert records[0][0] == {"feature": "B", "value": "x", "contribution": -0.9, "code": "B", "text": "B = x",
                             "sentence": "B = x: lowers the estimated risk of default"}
    assert records[1][1]["sentence"] == "A = missing: lowers the estimated risk of default"
    assert records[1][0]["sentence"] == "D = 0.25: raises the estimated risk of default"


def test_columns_and_an_empty_top():
    columns = top_reasons(CONTRIBUTIONS, FIELDS, VALUES, 2).columns()
    assert list(columns) == [f"reason_{i}_{part}" for i in (1, 2)
                             for part in ("feature", "value", "contribution", "sentence", "code", "text")]
    assert columns["reason_2_value"].tolist() == ["3", "missing"]
    none = top_reasons(CONTRIBUTIONS, FIELDS, VALUES, 0)
    assert none.fields.shape == (2, 0) and none.records() == [[], []] and none.columns() == {}
    assert top_reasons(CONTRIBUTIONS, FIELDS, VALUES, 10).k == 4


def test_many_reasons_read_as_few_do():
    """Past FEW_REASONS the values are shown field by field and the top k found by the compiled loop on every
    core: the same reasons, values and sentences as one by one."""
    rng = np.random.default_rng(0)
    n = 3_000
    fields = ["AMT_CREDIT", "CODE_GENDER", "EXT_SOURCE_2", "DAYS_BIRTH"]
    values = {"AMT_CREDIT": rng.normal(5e5, 1e5, n), "CODE_GENDER": rng.choice(np.array(["F", "M", None]), n),
              "EXT_SOURCE_2": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
              "DAYS_BIRTH": -rng.integers(7_000, 25_000, n).astype(float)}
    contributions = rng.normal(size=(n, 4))
    many = top_reasons(contributions, fields, values, 3)
    few = [top_reasons(contributions[i:i + 1], fields, {f: v[i:i + 1] for f, v in values.items()}, 3)
           for i in (0, 1, 2, 2_999)]
    for row, one in zip((0, 1, 2, 2_999), few):
        assert many.fields[row].tolist() == one.fields[0].tolist()
        assert many.shown()[row].tolist() == one.shown()[0].tolist()
        assert many.sentences()[row].tolist() == one.sentences()[0].tolist()
        assert many.reason_codes()[row].tolist() == one.reason_codes()[0].tolist()
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :3]
    assert (np.asarray(fields, dtype=object)[order] == many.fields).all()


def test_related_fields_are_one_reason_with_their_summed_contribution_and_code():
    fields = ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_MEAN", "DAYS_EMPLOYED", "AMT_CREDIT"]
    values = {"EXT_SOURCE_1": np.array([0.2]), "EXT_SOURCE_2": np.array([0.41]), "EXT_SOURCE_MEAN": np.array([0.3]),
              "DAYS_EMPLOYED": np.array([-700.0]), "AMT_CREDIT": np.array([5e5])}
    contributions = np.array([[0.1, 0.3, 0.2, -0.5, 0.05]])
    reasons = top_reasons(contributions, fields, values, 3)
    assert reasons.fields.tolist() == [["EXT_SOURCE_2", "DAYS_EMPLOYED", "AMT_CREDIT"]]
    np.testing.assert_allclose(reasons.contributions, [[0.6, -0.5, 0.05]])
    assert reasons.reason_codes().tolist() == [[catalog.entry("EXT_SOURCE_2").code, "R02", "R05"]]
    assert reasons.k == 3 and top_reasons(contributions, fields, values, 9).k == 3  # three families in all


def test_reasons_read_in_words_with_percentiles_of_the_training_applicants():
    grid = np.linspace(0.0, 1.0, 101)
    years_back = -np.linspace(0.0, 40 * 365.25, 101)[::-1]
    fields = ["EXT_SOURCE_2", "DAYS_EMPLOYED", "INST_LATE_SUM", "FLAG_OWN_CAR", "EXT_SOURCE_1"]
    values = {"EXT_SOURCE_2": np.array([0.27]), "DAYS_EMPLOYED": np.array([-700.0]),
              "INST_LATE_SUM": np.array([3.0]), "FLAG_OWN_CAR": np.array([1.0]), "EXT_SOURCE_1": np.array([np.nan])}
    contributions = np.array([[0.5, 0.4, 0.3, -0.2, 0.0]])
    records = top_reasons(contributions, fields, values, 4,
                          {"EXT_SOURCE_2": grid, "DAYS_EMPLOYED": years_back, "INST_LATE_SUM": grid}).records()[0]
    assert [r["text"] for r in records] == [
        "External score 2 is low (0.27, 27th percentile)", "Employed for 1.9 years (short)", "3 late instalments",
        "Owns a car: yes"]
    assert records[0]["sentence"] == "External score 2 is low (0.27, 27th percentile): raises the estimated risk " \
                                     "of default"
    without_reference = top_reasons(contributions, fields, values, 2).records()[0]
    assert [r["text"] for r in without_reference] == ["External score 2: 0.27",
                                                      "Time in current employment: 1.9 years"]


@pytest.mark.parametrize(("feature", "value", "percentile", "text"), [
    ("EXT_SOURCE_1", None, None, "External score 1: not provided"),
    ("ANNUITY_TO_INCOME", 0.25, 80.0, "Annuity takes 25% of the income (high)"),
    ("AMT_INCOME_TOTAL", 90_000.0, 50.0, "Income is average (90,000, 50th percentile)"),
    ("NAME_EDUCATION_TYPE", "Higher education", None, "Highest education: Higher education"),
    ("FLAG_OWN_CAR", "N", None, "Owns a car: no"),
    ("FLAG_DOCUMENT_3", 1, None, "Provided document 3: yes"),
    ("DAYS_REGISTRATION", -3652.5, 12.0, "Time since the registration changed is short (10.0 years, 12th "
                                         "percentile)"),
])
def test_statement_by_unit(feature, value, percentile, text):
    assert statement(catalog.entry(feature), value, percentile) == text


def test_many_grouped_reasons_read_as_few_do():
    rng = np.random.default_rng(1)
    n = FEW_REASONS
    fields = ["EXT_SOURCE_1", "EXT_SOURCE_3", "DAYS_EMPLOYED", "EMPLOYED_TO_AGE", "AMT_ANNUITY", "CODE_GENDER"]
    values = {"EXT_SOURCE_1": rng.random(n), "EXT_SOURCE_3": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
              "DAYS_EMPLOYED": -rng.integers(10, 9_000, n).astype(float), "EMPLOYED_TO_AGE": rng.random(n) / 3,
              "AMT_ANNUITY": rng.normal(25_000, 5_000, n), "CODE_GENDER": rng.choice(np.array(["F", "M"]), n)}
    quantiles = {name: np.quantile(values[name][~np.isnan(values[name])], np.linspace(0, 1, 101))
                 for name in ("EXT_SOURCE_1", "EXT_SOURCE_3", "DAYS_EMPLOYED", "AMT_ANNUITY")}
    contributions = rng.normal(size=(n, len(fields)))
    many = top_reasons(contributions, fields, values, 3, quantiles)
    for row in (0, 5, n - 1):
        one = top_reasons(contributions[row:row + 1], fields, {f: v[row:row + 1] for f, v in values.items()}, 3,
                          quantiles)
        assert many.records()[row] == one.records()[0]
    family_sums = np.column_stack([contributions[:, :2].sum(axis=1), contributions[:, 2:4].sum(axis=1),
                                   contributions[:, 4], contributions[:, 5]])
    np.testing.assert_allclose(np.abs(many.contributions[:, 0]), np.abs(family_sums).max(axis=1))
