"""The generator: schema, realism against the real rows, key integrity, determinism, signal, drift."""
import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from scoring import contract
from scoring.synthetic.dataset import generate_dataset

from ..conftest import SMALL, shared_file

ALL_TABLES = sorted(contract.TABLES)


def read(directory: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(directory / f"{table}.parquet")


@pytest.mark.parametrize("table", ALL_TABLES)
def test_generated_columns_are_the_contracts(small_dataset, table):
    frame = read(small_dataset, table)
    assert list(frame.columns) == contract.table(table).names
    assert len(frame) > 0


@pytest.mark.shared_data
@pytest.mark.parametrize("table,sample", [
    ("application_train", "application_train.csv"), ("bureau", "bureau.csv"),
    ("previous_application", "previous_application.csv"), ("credit_card_balance", "credit_card_balance.csv"),
    ("installments_payments", "installments_payments.csv"), ("POS_CASH_balance", "POS_CASH_balance.csv"),
    ("bureau_balance", "bureau_balance.csv"),
])
def test_generated_dtypes_match_the_real_rows(small_dataset, table, sample):
    real = pd.read_csv(shared_file(sample))
    generated = read(small_dataset, table)
    for name in real.columns:
        assert (real[name].dtype == object) == (generated[name].dtype == object), name
        if real[name].dtype == object:
            unseen = set(generated[name].dropna()) - set(contract.table(table).column(name).categories)
            assert not unseen, f"{table}.{name}: {unseen}"


def test_default_rate_is_kaggles(small_dataset):
    rate = read(small_dataset, "application_train")["TARGET"].mean()
    assert rate == pytest.approx(0.0807, abs=0.012)


def test_ext_source_1_missing_like_kaggle(small_dataset):
    apps = read(small_dataset, "application_train")
    assert apps["EXT_SOURCE_1"].isna().mean() == pytest.approx(0.56, abs=0.03)
    assert apps["EXT_SOURCE_2"].isna().mean() < 0.01


def test_days_employed_anomaly_marks_pensioners(small_dataset):
    apps = read(small_dataset, "application_train")
    sentinel = apps["DAYS_EMPLOYED"] == contract.DAYS_SENTINEL
    assert 0.12 < sentinel.mean() < 0.25
    assert apps.loc[sentinel, "NAME_INCOME_TYPE"].isin(["Pensioner", "Unemployed"]).all()
    assert (apps.loc[sentinel, "ORGANIZATION_TYPE"] == "XNA").all()
    assert (apps.loc[~sentinel, "DAYS_EMPLOYED"] < 0).all()
    assert (apps.loc[~sentinel, "DAYS_EMPLOYED"] > apps.loc[~sentinel, "DAYS_BIRTH"]).all()


def test_keys_are_unique_and_consistent(small_dataset):
    train, test = read(small_dataset, "application_train"), read(small_dataset, "application_test")
    ids = pd.concat([train.SK_ID_CURR, test.SK_ID_CURR])
    assert ids.is_unique
    bureau, prev = read(small_dataset, "bureau"), read(small_dataset, "previous_application")
    assert bureau.SK_ID_BUREAU.is_unique and prev.SK_ID_PREV.is_unique
    assert bureau.SK_ID_CURR.isin(ids).all() and prev.SK_ID_CURR.isin(ids).all()
    assert read(small_dataset, "bureau_balance").SK_ID_BUREAU.isin(bureau.SK_ID_BUREAU).all()
    for table in ("POS_CASH_balance", "installments_payments", "credit_card_balance"):
        child = read(small_dataset, table)
        pairs = child[["SK_ID_PREV", "SK_ID_CURR"]].drop_duplicates()
        joined = pairs.merge(prev[["SK_ID_PREV", "SK_ID_CURR"]], on="SK_ID_PREV", suffixes=("", "_prev"))
        assert len(joined) == len(pairs), f"{table} has SK_ID_PREV outside previous_application"
        assert (joined.SK_ID_CURR == joined.SK_ID_CURR_prev).all(), f"{table} owner differs from previous_application"


@pytest.mark.shared_data
def test_history_shapes_follow_the_real_rows(small_dataset):
    apps = read(small_dataset, "application_train")
    bureau = read(small_dataset, "bureau")
    real_apps = pd.read_csv(shared_file("coherent10k/application_train.csv.gz"), usecols=["SK_ID_CURR"])
    real_bureau = pd.read_csv(shared_file("coherent10k/bureau.csv.gz"), usecols=["SK_ID_CURR"])
    share = bureau.SK_ID_CURR.isin(apps.SK_ID_CURR).groupby(bureau.SK_ID_CURR).size().reindex(apps.SK_ID_CURR)
    real_share = real_bureau.SK_ID_CURR.nunique() / len(real_apps)
    assert share.notna().mean() == pytest.approx(real_share, abs=0.03)
    per_client = bureau.groupby("SK_ID_CURR").size().mean()
    assert per_client == pytest.approx(real_bureau.groupby("SK_ID_CURR").size().mean(), rel=0.1)
    cards = read(small_dataset, "credit_card_balance").SK_ID_CURR.nunique()
    assert cards / (len(apps) + len(read(small_dataset, "application_test"))) == pytest.approx(0.28, abs=0.03)


def file_digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(pd.read_parquet(p).to_csv().encode()).hexdigest()
            for p in sorted(directory.glob("*.parquet"))}


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    params = replace(SMALL, n_applicants=800, n_test=200, seed=3, chunk_size=500)
    generate_dataset(params, tmp_path / "a", progress=False)
    generate_dataset(params, tmp_path / "b", progress=False)
    generate_dataset(replace(SMALL, n_applicants=800, n_test=200, seed=4, chunk_size=500), tmp_path / "c",
                     progress=False)
    assert file_digest(tmp_path / "a") == file_digest(tmp_path / "b")
    assert file_digest(tmp_path / "a")["application_train.parquet"] != file_digest(tmp_path / "c")[
        "application_train.parquet"]


def test_oracle_probability_is_informative_and_separate(small_dataset):
    apps = read(small_dataset, "application_train")
    oracle = pd.read_parquet(small_dataset / "oracle.parquet")
    assert "TRUE_PD" not in apps.columns
    merged = apps.merge(oracle, on="SK_ID_CURR")
    assert len(merged) == len(apps) and set(oracle.split) == {"train", "test"}
    assert roc_auc_score(merged.TARGET, merged.TRUE_PD) > 0.78


def test_signal_in_application_and_history_columns(small_dataset):
    apps = read(small_dataset, "application_train")
    ext = apps.dropna(subset=["EXT_SOURCE_2"])
    assert roc_auc_score(ext.TARGET, -ext.EXT_SOURCE_2) > 0.6
    assert roc_auc_score(apps.TARGET, apps.DAYS_BIRTH) > 0.55  # younger (less negative) is riskier
    inst = read(small_dataset, "installments_payments")
    late = (inst.DAYS_ENTRY_PAYMENT > inst.DAYS_INSTALMENT).groupby(inst.SK_ID_CURR).mean().rename("late")
    with_history = apps.merge(late, left_on="SK_ID_CURR", right_index=True)
    assert roc_auc_score(with_history.TARGET, with_history.late) > 0.57


def test_drift_moves_only_the_test_table(tmp_path):
    base = dict(n_applicants=3000, n_test=3000, seed=11, chunk_size=6000)
    off = replace(SMALL, **base, drift=replace(SMALL.drift, enabled=False))
    generate_dataset(off, tmp_path / "off", progress=False)
    generate_dataset(replace(off, drift=replace(off.drift, enabled=True)), tmp_path / "on", progress=False)
    off_train, on_train = read(tmp_path / "off", "application_train"), read(tmp_path / "on", "application_train")
    pd.testing.assert_frame_equal(off_train, on_train)
    off, on = read(tmp_path / "off", "application_test"), read(tmp_path / "on", "application_test")
    assert on.AMT_INCOME_TOTAL.median() / off.AMT_INCOME_TOTAL.median() == pytest.approx(1.35, rel=0.05)
    assert (on.DAYS_BIRTH.mean() - off.DAYS_BIRTH.mean()) / 365.25 == pytest.approx(6, abs=0.6)
    assert on.EXT_SOURCE_2.mean() < off.EXT_SOURCE_2.mean() - 0.08
    assert on.ORGANIZATION_TYPE.isin(["Mobile", "Realtor", "Legal Services", "Religion"]).mean() > 0.08
    assert np.allclose(off.AMT_CREDIT, on.AMT_CREDIT)
