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
    assert columns["reason_2_value"].tolist() == ["3", None]
    none = top_reasons(CONTRIBUTIONS, FIELDS, VALUES, 0)
    assert none.fields.shape == (2, 0) and none.records() == [[], []] and none.columns() == {}
    assert top_reasons(CONTRIBUTIONS, FIELDS, VALUES, 10).k == 4
