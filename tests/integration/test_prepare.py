"""The prepare step on good, real and bad input: clear one-line errors, full report, earlier outputs kept."""
import gc
import hashlib
import json
import os
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import pandas as pd
import pytest
import yaml

from scoring import contract
from scoring.data.prepare import ValidationFailed, prepare_tables

from ..conftest import REPO, shared_file

pytestmark = pytest.mark.integration


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def write_raw(small_dataset: Path, raw: Path) -> Path:
    """Kaggle-like CSVs: 400 applications and their bureau credits."""
    raw.mkdir(parents=True)
    apps = pd.read_parquet(small_dataset / "application_train.parquet").head(400)
    apps.to_csv(raw / "application_train.csv", index=False)
    bureau = pd.read_parquet(small_dataset / "bureau.parquet")
    bureau[bureau.SK_ID_CURR.isin(apps.SK_ID_CURR)].to_csv(raw / "bureau.csv", index=False)
    return raw


@pytest.fixture(scope="module")
def good_run(small_dataset, tmp_path_factory, validator) -> tuple[Path, Path]:
    """Raw CSVs and the outputs of a first, successful prepare on them."""
    base = tmp_path_factory.mktemp("good")
    raw = write_raw(small_dataset, base / "raw")
    prepare_tables(raw, base / "prepared", base / "reports", validator)
    return raw, base / "prepared"


@pytest.fixture()
def raw_dir(good_run, tmp_path) -> Path:
    return Path(shutil.copytree(good_run[0], tmp_path / "raw"))


@pytest.fixture()
def prepared(good_run, tmp_path) -> Path:
    """Earlier outputs that a failing run must leave untouched."""
    return Path(shutil.copytree(good_run[1], tmp_path / "prepared"))


def corrupt_csv(raw_dir: Path, table: str, change) -> None:
    path = raw_dir / f"{table}.csv"
    frame = pd.read_csv(path)
    change(frame)
    frame.to_csv(path, index=False)


def set_value(column, value, row=3):
    def change(frame):
        if frame[column].dtype != object and isinstance(value, str):
            frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return change


def duplicate_first_id(frame):
    frame.loc[5, "SK_ID_CURR"] = frame.loc[0, "SK_ID_CURR"]


# case: (table, corruption, the line prepare must print). All are applied to one input, and each must be reported.
BAD_INPUTS = {
    "negative amount": ("application_train", set_value("AMT_CREDIT", -1500.0),
                        "application_train.AMT_CREDIT: must be between 0 and 10000000 - failed for 1 of 400 rows "
                        "(e.g. -1500.0)"),
    "negative amount in a history table": ("bureau", set_value("AMT_CREDIT_SUM", -10.0),
                                           "bureau.AMT_CREDIT_SUM: must be between 0 and 5000000000 - failed for 1 of"),
    "absurd amount": ("application_train", set_value("AMT_ANNUITY", 1e15, row=13),
                      "application_train.AMT_ANNUITY: must be between 0 and 1000000 - failed for 1 of 400 rows"),
    "target outside 0/1": ("application_train", set_value("TARGET", 2, row=7),
                           "application_train.TARGET: must be between 0 and 1 - failed for 1 of 400 rows (e.g. 2)"),
    "duplicate SK_ID_CURR": ("application_train", duplicate_first_id,
                             "application_train.SK_ID_CURR: key must be unique - failed for 2 of 400 rows"),
    "wrong type": ("application_train", set_value("AMT_INCOME_TOTAL", "abc"),
                   "application_train.AMT_INCOME_TOTAL: type must be numeric - failed (e.g. found dtype object)"),
    "missing column": ("application_train", lambda f: f.drop(columns="EXT_SOURCE_2", inplace=True),
                       "application_train.EXT_SOURCE_2: every contract column must exist - failed"),
    "unknown category": ("application_train", set_value("CODE_GENDER", "Z", row=9),
                         "application_train.CODE_GENDER: must be one of 3 known categories - failed for 1 of 400"),
    "missing required value": ("application_train", set_value("DAYS_BIRTH", None, row=11),
                               "application_train.DAYS_BIRTH: must not be missing - failed for 1 of 400 rows"),
}


@pytest.fixture(scope="module")
def bad_run(good_run, tmp_path_factory, validator) -> dict:
    """One prepare over an input carrying every corruption of BAD_INPUTS (GX costs seconds per run)."""
    base = tmp_path_factory.mktemp("bad")
    raw = Path(shutil.copytree(good_run[0], base / "raw"))
    prepared = Path(shutil.copytree(good_run[1], base / "prepared"))
    before = digest(prepared)
    for table, change, _ in BAD_INPUTS.values():
        corrupt_csv(raw, table, change)
    with pytest.raises(ValidationFailed) as failure:
        prepare_tables(raw, prepared, base / "reports", validator)
    return {"message": str(failure.value), "before": before, "after": digest(prepared),
            "report": (base / "reports" / "validation.md").read_text()}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_with_a_named_rule(case, bad_run):
    expected = BAD_INPUTS[case][2]
    assert any(line.strip().startswith(f"- {expected}") for line in bad_run["message"].splitlines()), (
        bad_run["message"])
    table, column = expected.split(":")[0].split(".")
    assert f"| error | {table} | {column} |" in bad_run["report"]


def test_bad_input_reports_nothing_else_and_keeps_earlier_outputs(bad_run):
    assert bad_run["after"] == bad_run["before"]
    assert bad_run["message"].startswith(f"{len(BAD_INPUTS)} contract rule(s) failed; nothing was written")
    assert "# Data validation: FAILED" in bad_run["report"]


def test_missing_required_file(raw_dir, prepared, tmp_path, validator):
    before = digest(prepared)
    (raw_dir / "application_train.csv").unlink()
    with pytest.raises(ValidationFailed, match="application_train: file is required.*kaggle competitions download"):
        prepare_tables(raw_dir, prepared, tmp_path / "reports", validator)
    assert digest(prepared) == before


@pytest.mark.parametrize("content,expected", [
    ("", "application_train: file .* is empty"),
    (",".join(contract.table("application_train").names) + "\n", "application_train: must have at least one row"),
])
def test_empty_file(content, expected, raw_dir, prepared, tmp_path, validator):
    before = digest(prepared)
    (raw_dir / "application_train.csv").write_text(content)
    with pytest.raises(ValidationFailed, match=expected):
        prepare_tables(raw_dir, prepared, tmp_path / "reports", validator)
    assert digest(prepared) == before


def test_absent_history_tables_are_allowed(raw_dir, tmp_path, validator):
    result = prepare_tables(raw_dir, tmp_path / "out", tmp_path / "reports", validator)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["application_train.parquet", "bureau.parquet"]
    assert result.key_coverage["bureau.SK_ID_CURR"] == 1.0


def test_report_gives_history_coverage_per_applicant(raw_dir, tmp_path, validator):
    apps = pd.read_csv(raw_dir / "application_train.csv")
    with_bureau = pd.read_csv(raw_dir / "bureau.csv").SK_ID_CURR.nunique()
    result = prepare_tables(raw_dir, tmp_path / "out", tmp_path / "reports", validator)
    train = result.applicant_coverage["application_train"]
    assert train["applicants"] == len(apps) and train["tables"]["bureau"]["applicants"] == with_bureau
    assert "previous_application" in result.applicant_coverage["absent_tables"]
    assert sum(train["combinations"].values()) == len(apps)
    report = json.loads((tmp_path / "reports" / "validation.json").read_text())
    assert report["history_coverage"] == json.loads(json.dumps(result.applicant_coverage))
    assert "## History coverage per applicant" in (tmp_path / "reports" / "validation.md").read_text()
    assert not list((tmp_path / "reports").glob(".*.tmp")), "reports are written whole, then renamed"


def test_prepared_tables_have_contract_types(raw_dir, tmp_path, validator):
    prepare_tables(raw_dir, tmp_path / "out", tmp_path / "reports", validator)
    apps = pd.read_parquet(tmp_path / "out" / "application_train.parquet")
    assert apps["CODE_GENDER"].dtype == "category"
    assert apps["SK_ID_CURR"].dtype == "int64" and apps["TARGET"].dtype == "int64"
    assert list(apps.columns) == contract.table("application_train").names


def test_stage_script_prints_one_line_per_failed_rule(raw_dir, tmp_path):
    corrupt_csv(raw_dir, "application_train", set_value("AMT_CREDIT", -1.0))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["source"] = "kaggle"
    params["paths"].update(raw=str(raw_dir), prepared=str(tmp_path / "prepared"), reports=str(tmp_path / "reports"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py")], cwd=tmp_path, capture_output=True,
                         text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300)
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if "application_train.AMT_CREDIT" in line]
    assert lines and "must be between 0 and 10000000 - failed for 1 of 400 rows (e.g. -1.0)" in lines[0]
    assert "Full report:" in run.stderr
    assert not (tmp_path / "prepared").exists()


def test_generated_tables_pass_the_contract(small_dataset, tmp_path, validator):
    result = prepare_tables(small_dataset, tmp_path / "prepared", tmp_path / "reports", validator)
    assert len(result.reports) == 8 and all(not r.findings for r in result.reports)
    assert all(share == 1.0 for share in result.key_coverage.values())
    assert (tmp_path / "prepared" / "oracle.parquet").exists()


@pytest.mark.shared_data
def test_real_rows_pass_the_contract(real_prepared):
    result, prepared = real_prepared
    assert not [f.line() for r in result.reports for f in r.errors]
    apps = pd.read_parquet(prepared / "application_train.parquet")
    assert len(apps) == 10_000 and apps.TARGET.mean() == pytest.approx(0.0781)
    assert result.key_coverage["bureau.SK_ID_CURR"] == 1.0
    assert result.key_coverage["bureau_balance.SK_ID_BUREAU"] == 1.0
    assert not (prepared / "oracle.parquet").exists()


@pytest.mark.shared_data
@pytest.mark.parametrize("table,sample", [
    ("application_train", "application_train.csv"),
    ("application_train", "idrange_100002_100999/application_train.csv.gz"),
    ("bureau", "bureau.csv"), ("bureau_balance", "bureau_balance.csv"),
    ("previous_application", "previous_application.csv"), ("POS_CASH_balance", "POS_CASH_balance.csv"),
    ("installments_payments", "installments_payments.csv"), ("credit_card_balance", "credit_card_balance.csv"),
])
def test_every_real_sample_passes_the_contract(table, sample, validator):
    from scoring.data.io import read_raw_table

    report = validator.validate(read_raw_table(shared_file(sample), table), table)
    assert not [f.line() for f in report.errors]


def test_the_validator_keeps_nothing_of_what_it_validated(small_dataset, validator):
    """prepare on Ray validates block after block with one validator per worker: no frame, and none of its metrics'
    column-long results, may stay in Great Expectations' caches (they did: a worker grew to 8 GiB at 1M applicants)."""
    frame = pd.read_parquet(small_dataset / "credit_card_balance.parquet")
    rows = len(frame)

    def column_long() -> set[int]:
        """The pandas objects alive now with as many rows as the validated frame (other tests' tables included)."""
        gc.collect()
        return {id(o) for o in gc.get_objects() if isinstance(o, (pd.Series, pd.DataFrame)) and len(o) == rows}

    before = column_long()
    columns = [weakref.ref(frame[name]) for name in frame.columns[:3]]
    alive = weakref.ref(frame)
    report = validator.validate(frame, "credit_card_balance")
    assert report.rows == rows and not report.errors
    del frame
    gc.collect()
    assert alive() is None, "the validated frame is still referenced"
    assert all(ref() is None for ref in columns)
    leftovers = column_long() - before
    assert not leftovers, f"{len(leftovers)} column-long results of the validation are still referenced"
