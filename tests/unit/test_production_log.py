"""The production log's pure parts: a logged line leaves out null fields and reads back as it was written, a small
batch's lines equal single lines, a batch's Arrow record has the log's schema, file names give the writing process,
every format comes back in one shape, and the reader's sample is uniform, seeded and bounded."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pandas as pd
import pytest

from scoring.monitoring import production_log as pl

TS = "2026-12-03T10:00:00.000+00:00"


def test_a_line_leaves_out_nulls_and_reads_back_whole():
    applicant = {"SK_ID_CURR": 100002, "AMT_INCOME_TOTAL": 202500.0, "CODE_GENDER": "M", "EXT_SOURCE_1": None}
    line = pl.applicant_line(applicant, 0.125, "granted", "5", "test", TS)
    assert line.endswith(b"\n") and b"EXT_SOURCE_1" not in line
    assert orjson.loads(line)["applicant"] == {"SK_ID_CURR": 100002, "AMT_INCOME_TOTAL": 202500.0, "CODE_GENDER": "M"}
    assert pl.parse_line(line) == {"SK_ID_CURR": 100002, "AMT_INCOME_TOTAL": 202500.0, "CODE_GENDER": "M",
                                   "ts": TS, "model_version": "5", "probability": 0.125, "decision": "granted",
                                   "traffic": "test"}


@pytest.mark.parametrize("line", [b'{"ts": 1}', b'{"applicant": [1]}', b"[1, 2]", b'{"applicant": {"A": 1'])
def test_a_line_that_is_not_a_scored_applicant_is_refused(line):
    with pytest.raises((orjson.JSONDecodeError, KeyError, TypeError)):
        pl.parse_line(line)


def test_a_small_batch_is_the_lines_of_its_applicants():
    """Whatever the frame's dtypes (JSON: objects and None; Arrow or Parquet bodies: float64 with NaN, pandas NA)."""
    frame = pd.DataFrame({"SK_ID_CURR": [1.0, np.nan], "AMT_INCOME_TOTAL": pd.array([5, None], dtype="Int64"),
                          "CODE_GENDER": ["F", None], "EXT_SOURCE_1": [np.nan, 0.5]})
    scores = SimpleNamespace(probability=np.array([0.25, 0.75]), decisions=np.array(["granted", "refused"]))
    lines = pl.batch_lines(frame, scores, "5", "production", TS).splitlines(keepends=True)
    assert lines == [pl.applicant_line({"SK_ID_CURR": 1.0, "AMT_INCOME_TOTAL": 5, "CODE_GENDER": "F"}, 0.25,
                                       "granted", "5", "production", TS),
                     pl.applicant_line({"EXT_SOURCE_1": 0.5}, 0.75, "refused", "5", "production", TS)]


def test_a_batch_record_has_the_log_schema_whatever_the_frame():
    frame = pd.DataFrame({"SK_ID_CURR": [7, None], "AMT_INCOME_TOTAL": [1000, 2000.5],
                          "NAME_CONTRACT_TYPE": pd.Categorical(["Cash loans", None])})
    scores = SimpleNamespace(probability=np.array([0.1, 0.9]), decisions=np.array(["granted", "refused"]))
    record = pl.batch_record(frame, scores, None, "preview", TS)
    assert record.schema == pl.SCHEMA and record.num_rows == 2
    columns = record.to_pydict()
    assert columns["SK_ID_CURR"] == [7.0, None] and columns["AMT_INCOME_TOTAL"] == [1000.0, 2000.5]
    assert columns["NAME_CONTRACT_TYPE"] == ["Cash loans", None] and columns["DAYS_BIRTH"] == [None, None]
    assert columns["model_version"] == [None, None] and columns["traffic"] == ["preview"] * 2
    assert columns["decision"] == ["granted", "refused"] and columns["ts"] == [TS] * 2


@pytest.mark.parametrize(("name", "pid"), [
    ("requests-20261203T101500Z-4242-0.jsonl.gz", 4242), ("batch-20261203T101500Z-77-12.arrows", 77),
    ("requests-4242.jsonl", 4242), ("batch-20261125T104800123456-31.parquet", 31), ("README.md", None),
])
def test_a_file_name_gives_its_writer(name, pid):
    assert pl.writer_pid(Path(name)) == pid


def test_every_format_comes_back_in_one_shape():
    from_lines = pl.shaped(pd.DataFrame.from_records([{"AMT_CREDIT": 5, "CODE_GENDER": "F", "probability": 0.5}]))
    assert list(from_lines.columns) == pl.COLUMNS
    assert from_lines["AMT_CREDIT"].dtype == "float64" and from_lines["probability"].dtype == "float64"
    assert from_lines["CODE_GENDER"].dtype == object and from_lines["traffic"].isna().all()


def sample_ids(max_rows: int | None, seed: int, chunks=(range(0, 700), range(700, 1000), range(1000, 1001))):
    sample = pl.RowSample(max_rows, seed)
    for chunk in chunks:
        sample.add(pd.DataFrame({"SK_ID_CURR": list(chunk)}))
    return sample.rows()["SK_ID_CURR"].tolist(), sample.seen


def test_the_sample_is_seeded_ordered_and_uniform():
    ids, seen = sample_ids(100, seed=1)
    assert seen == 1001 and len(ids) == len(set(ids)) == 100 and ids == sorted(ids)
    assert ids == sample_ids(100, seed=1)[0] != sample_ids(100, seed=2)[0]
    assert sample_ids(None, seed=1)[0] == list(range(1001)) == sample_ids(5000, seed=1)[0]
    counts = np.zeros(1001)
    for seed in range(200):
        counts[sample_ids(100, seed)[0]] += 1
    assert abs(counts[:700].mean() - counts[700:].mean()) < 2  # each row ~20 times in 200 samples of 10%


def test_the_sample_holds_bounded_memory():
    sample = pl.RowSample(10, seed=0)
    for start in range(0, 200_000, 10_000):
        sample.add(pd.DataFrame({"SK_ID_CURR": np.arange(start, start + 10_000)}))
        assert sum(len(f) for f in sample.frames) == sample.kept <= 2 * 10 + 65_536 + 10_000
    assert len(sample.rows()) == 10 and sample.seen == 200_000
