import numpy as np
import pandas as pd
import pytest

from scoring import contract, features


def tiny_apps(**overrides) -> pd.DataFrame:
    """Two applications with every contract column (values only where a test looks)."""
    data = {name: [np.nan, np.nan] for name in contract.table("application_train").names}
    data.update(SK_ID_CURR=[1, 2], TARGET=[0, 1], AMT_CREDIT=[200_000.0, 100_000.0],
                AMT_INCOME_TOTAL=[100_000.0, 50_000.0], AMT_ANNUITY=[10_000.0, 5_000.0],
                AMT_GOODS_PRICE=[180_000.0, 100_000.0], DAYS_BIRTH=[-36525, -10000],
                DAYS_EMPLOYED=[contract.DAYS_SENTINEL, -1000], CNT_FAM_MEMBERS=[2.0, 1.0],
                DAYS_LAST_PHONE_CHANGE=[-100.0, 0.0], EXT_SOURCE_1=[np.nan, 0.2], EXT_SOURCE_2=[0.5, 0.4],
                EXT_SOURCE_3=[0.7, np.nan], CODE_GENDER=["F", "M"])
    data.update(overrides)
    return pd.DataFrame(data)


def test_application_features_ratios_and_the_days_employed_anomaly():
    out = features.application_features(tiny_apps())
    assert out.index.tolist() == [1, 2] and "TARGET" not in out
    assert np.isnan(out.loc[1, "DAYS_EMPLOYED"]) and out.loc[1, "DAYS_EMPLOYED_ANOMALY"] == 1
    assert out.loc[2, "DAYS_EMPLOYED"] == -1000 and out.loc[2, "DAYS_EMPLOYED_ANOMALY"] == 0
    assert out.loc[1, "CREDIT_TO_INCOME"] == pytest.approx(2.0)
    assert out.loc[1, "ANNUITY_TO_CREDIT"] == pytest.approx(0.05)
    assert out.loc[1, "AGE_YEARS"] == pytest.approx(100.0)
    assert out.loc[1, "EXT_SOURCE_MEAN"] == pytest.approx(0.6)
    assert out.loc[1, "EXT_SOURCE_MISSING"] == 1
    assert out.loc[2, "CODE_GENDER"] == "M"


def test_application_features_do_not_depend_on_target():
    a = features.application_features(tiny_apps(TARGET=[0, 1]))
    b = features.application_features(tiny_apps(TARGET=[1, 0]))
    pd.testing.assert_frame_equal(a, b)


def test_installment_lateness_and_underpayment():
    inst = pd.DataFrame({
        "SK_ID_PREV": [10, 10, 11], "SK_ID_CURR": [1, 1, 2], "NUM_INSTALMENT_VERSION": [1.0] * 3,
        "NUM_INSTALMENT_NUMBER": [1, 2, 1], "DAYS_INSTALMENT": [-100.0, -70.0, -40.0],
        "DAYS_ENTRY_PAYMENT": [-95.0, -75.0, -40.0], "AMT_INSTALMENT": [100.0, 100.0, 50.0],
        "AMT_PAYMENT": [100.0, 60.0, 50.0],
    })
    out = features.installments_features(inst)
    assert out.loc[1, "INST_DAYS_LATE_MAX"] == 5 and out.loc[1, "INST_LATE_MEAN"] == 0.5
    assert out.loc[1, "INST_UNDERPAID_SUM"] == 40 and out.loc[2, "INST_LATE_SUM"] == 0
    assert out.loc[1, "INST_NUM_INSTALMENT_NUMBER_COUNT"] == 2


def test_bureau_features_with_monthly_statuses():
    bureau = pd.DataFrame({
        "SK_ID_CURR": [1, 1, 2], "SK_ID_BUREAU": [7, 8, 9], "CREDIT_ACTIVE": ["Active", "Closed", "Closed"],
        "AMT_CREDIT_SUM_DEBT": [50.0, 0.0, 0.0], "AMT_CREDIT_SUM": [100.0, 200.0, 10.0],
        "CREDIT_DAY_OVERDUE": [3, 0, 0], **{c: [0.0] * 3 for c in (
            "DAYS_CREDIT", "DAYS_CREDIT_ENDDATE", "AMT_CREDIT_SUM_OVERDUE", "AMT_CREDIT_MAX_OVERDUE",
            "CNT_CREDIT_PROLONG", "DAYS_CREDIT_UPDATE")},
    })
    balance = pd.DataFrame({"SK_ID_BUREAU": [7, 7, 7, 7], "MONTHS_BALANCE": [0, -1, -2, -3],
                            "STATUS": ["1", "0", "0", "3"]})
    out = features.bureau_features(bureau, balance)
    assert out.loc[1, "BURO_ACTIVE_SUM"] == 1 and out.loc[1, "BURO_SK_ID_BUREAU_COUNT"] == 2
    assert out.loc[1, "BURO_DEBT_TO_CREDIT_MAX"] == pytest.approx(0.5)
    assert out.loc[1, "BURO_BB_LATE_SHARE_MAX"] == pytest.approx(0.5) and out.loc[1, "BURO_BB_SEVERE_MAX"] == 1
    assert np.isnan(out.loc[2, "BURO_BB_LATE_SHARE_MEAN"])


def test_unknown_applicant_has_no_history_and_zero_counts():
    history = pd.DataFrame({"BURO_SK_ID_BUREAU_COUNT": [3.0], "BURO_ACTIVE_MEAN": [0.5]},
                           index=pd.Index([2], name="SK_ID_CURR"))
    out = features.build_features(tiny_apps(), history)
    assert out.loc[1, "BURO_SK_ID_BUREAU_COUNT"] == 0 and np.isnan(out.loc[1, "BURO_ACTIVE_MEAN"])
    assert out.loc[2, "BURO_SK_ID_BUREAU_COUNT"] == 3


def test_absent_history_tables_leave_their_features_out():
    pos = pd.DataFrame({"SK_ID_PREV": [1], "SK_ID_CURR": [1], "MONTHS_BALANCE": [-1], "CNT_INSTALMENT": [12.0],
                        "CNT_INSTALMENT_FUTURE": [6.0], "NAME_CONTRACT_STATUS": ["Active"], "SK_DPD": [0],
                        "SK_DPD_DEF": [0]})
    history = features.history_features({"POS_CASH_balance": pos})
    assert set(history.columns) - {"HAS_POS"} and history.index.tolist() == [1]
    assert all(c.startswith("POS_") for c in history.columns if c != "HAS_POS"), "only POS aggregates and its flag"
    assert not {"HAS_BUREAU", "HAS_PREVIOUS", "PREV_NOT_COLLECTED"} & set(history.columns), "absent: no flag, not 0"
    assert features.history_features({}).empty


def test_history_coverage_flags_per_applicant_and_uncollected_previous_applications():
    bureau = pd.DataFrame({"SK_ID_CURR": [1, 1, 2], "SK_ID_BUREAU": [10, 11, 12]})
    previous = pd.DataFrame({"SK_ID_CURR": [1], "SK_ID_PREV": [100]})
    pos = pd.DataFrame({"SK_ID_CURR": [1, 3], "SK_ID_PREV": [100, 300]})  # loan 300: not in previous_application
    flags = features.history_coverage({"bureau": bureau, "previous_application": previous, "POS_CASH_balance": pos})
    assert set(flags.columns) == {"HAS_BUREAU", "HAS_PREVIOUS", "HAS_POS", "PREV_NOT_COLLECTED"}
    assert flags.loc[1].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert flags.loc[2, "HAS_BUREAU"] == 1 and flags.loc[2, "HAS_POS"] == 0
    assert flags.loc[3, "HAS_PREVIOUS"] == 0 and flags.loc[3, "PREV_NOT_COLLECTED"] == 1


def test_coverage_flags_are_zero_not_missing_for_an_applicant_without_history():
    history = pd.DataFrame({"HAS_BUREAU": [1.0], "BURO_ACTIVE_MEAN": [0.5]}, index=pd.Index([2], name="SK_ID_CURR"))
    out = features.build_features(tiny_apps(), history)
    assert out.loc[2, "HAS_BUREAU"] == 1 and out.loc[1, "HAS_BUREAU"] == 0
    assert np.isnan(out.loc[1, "BURO_ACTIVE_MEAN"])
