"""The one reasons function: the k largest |contributions| of each row, strongest first, with the values of those
fields, rendered as API records (a prefix per applicant) and as table columns."""
import numpy as np

from scoring.serving.reasons import top_reasons

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
    assert records[0][0] == {"feature": "B", "value": "x", "contribution": -0.9,
                             "sentence": "B = x lowers the estimated risk of default"}
    assert records[1][1]["sentence"] == "A = missing lowers the estimated risk of default"
    assert records[1][0]["sentence"] == "D = 0.25 raises the estimated risk of default"


def test_columns_and_an_empty_top():
    columns = top_reasons(CONTRIBUTIONS, FIELDS, VALUES, 2).columns()
    assert list(columns) == ["reason_1_feature", "reason_1_value", "reason_1_contribution", "reason_1_sentence",
                             "reason_2_feature", "reason_2_value", "reason_2_contribution", "reason_2_sentence"]
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
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :3]
    assert (np.asarray(fields, dtype=object)[order] == many.fields).all()
