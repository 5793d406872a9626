"""The production log on disk: what the service writes comes back through the reader (production traffic only, every
format, old ones included), files rotate by size and by time and are closed whole, the writer deletes what the
retention says and never a file another process is writing, and every logged answer is read exactly once: from
concurrent threads, from several processes in one folder, from the service itself, and after a writer was killed."""
from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pandas as pd

from scoring.monitoring import production_log as pl
from scoring.serving import request_schema
from scoring.settings import ProductionLogSettings
from serve.api import build_api

from ..conftest import REPO, SETTINGS

ARROW_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
DAY = 86400.0
N_SINGLE = 333
WRITER = """
import sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np, pandas as pd
from scoring.monitoring.production_log import ProductionLog
from scoring.settings import ProductionLogSettings
folder, first, count, mb = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
log = ProductionLog(folder, ProductionLogSettings(mb, 60.0, 30.0, 100.0))
def applicant(i):
    return {"SK_ID_CURR": i, "AMT_INCOME_TOTAL": 1000.0 + i, "NAME_CONTRACT_TYPE": "Cash loans", "EXT_SOURCE_1": None}
i, request = first, 0
while count < 0 or i < first + count:
    n = 80 if request % 10 == 9 else 5 if request % 10 == 4 else 1
    if n == 1:
        log.single(applicant(i), 0.5, "granted", "5", "production")
    else:
        scores = SimpleNamespace(probability=np.full(n, 0.5), decisions=np.array(["granted"] * n, dtype=object))
        log.batch(pd.DataFrame([applicant(j) for j in range(i, i + n)]), scores, "5")
    print(i, n, flush=True)  # acknowledged: written before this line
    i, request = i + n, request + 1
log.close()
"""


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def limits(max_file_mb: float = 64, max_file_minutes: float = 60, retention_days: float = 30,
           max_total_gb: float = 20) -> ProductionLogSettings:
    return ProductionLogSettings(max_file_mb, max_file_minutes, retention_days, max_total_gb)


def applicant(i: int, **fields) -> dict:
    return {"SK_ID_CURR": i, "AMT_INCOME_TOTAL": 1000.0 + i, "NAME_CONTRACT_TYPE": "Cash loans",
            "CODE_GENDER": "F", "EXT_SOURCE_1": None, **fields}


def scores(n: int, probability: float = 0.25) -> SimpleNamespace:
    return SimpleNamespace(probability=np.full(n, probability),
                           decisions=np.array(["refused" if probability > 0.5 else "granted"] * n, dtype=object))


def batch(log: pl.ProductionLog, ids: range, traffic: str = "production", probability: float = 0.25) -> None:
    log.batch(pd.DataFrame([applicant(i) for i in ids]), scores(len(ids), probability), "7", traffic)


def logged_ids(directory: Path) -> list[int]:
    return pl.read_production_log(directory).applicants["SK_ID_CURR"].astype(int).tolist()


def is_whole(path: Path) -> bool:
    """A closed file: a gzip stream with its trailer, an Arrow stream with its end marker."""
    if path.name.endswith(".gz"):
        try:
            gzip.decompress(path.read_bytes())
        except EOFError:
            return False
        return True
    return path.read_bytes().endswith(ARROW_EOS)


# ---- formats -------------------------------------------------------------------------------------------------------
def test_lines_and_batches_come_back_with_production_traffic_only(tmp_path):
    clock = FakeClock(1_800_000_000.0)
    log = pl.ProductionLog(tmp_path, limits(retention_days=1000), clock)  # 2027: in the future
    log.single(applicant(1), 0.125, "granted", "7", "production")
    log.single(applicant(2), 0.9, "refused", "7", "test")
    log.single(applicant(3, EXT_SOURCE_1=0.5), 0.75, "refused", "7", "preview")
    batch(log, range(10, 15))                                 # small: JSON lines
    batch(log, range(100, 100 + pl.SMALL_BATCH), "production", 0.75)  # large: Arrow
    batch(log, range(500, 500 + pl.SMALL_BATCH), "test")
    assert sorted(p.suffixes[-1] for p in tmp_path.iterdir()) == [".arrows", ".gz"]
    read = pl.read_production_log(tmp_path)  # while the files are still open
    log.close()
    assert read.applicants.equals(pl.read_production_log(tmp_path).applicants)
    rows = read.applicants.set_index("SK_ID_CURR")
    assert sorted(rows.index) == [1, *range(10, 15), *range(100, 100 + pl.SMALL_BATCH)]
    assert read.rows_logged == len(rows) and read.skipped_lines == 0 and read.files == 2
    assert rows.loc[1, "probability"] == 0.125 and rows.loc[100, "decision"] == "refused"
    assert rows.loc[12, "AMT_INCOME_TOTAL"] == 1012.0 and rows.loc[120, "NAME_CONTRACT_TYPE"] == "Cash loans"
    assert rows["EXT_SOURCE_1"].isna().all() and rows["DAYS_BIRTH"].isna().all()
    assert set(rows["ts"]) == {"2027-01-15T08:00:00.000+00:00"} and set(rows["model_version"]) == {"7"}
    assert set(rows["traffic"]) == {"production"} and rows["AMT_INCOME_TOTAL"].dtype == "float64"


def test_a_line_leaves_out_null_fields_and_zcat_reads_it(tmp_path):
    log = pl.ProductionLog(tmp_path, limits())
    log.single(applicant(1), 0.125, "granted", "7")
    [path] = tmp_path.iterdir()
    line = orjson.loads(subprocess.run(["zcat", "-f", str(path)], capture_output=True, check=False).stdout)
    assert line["applicant"] == {"SK_ID_CURR": 1, "AMT_INCOME_TOTAL": 1001.0, "NAME_CONTRACT_TYPE": "Cash loans",
                                 "CODE_GENDER": "F"}
    assert line["traffic"] == "production" and line["decision"] == "granted"
    log.close()


def test_older_formats_are_still_read(tmp_path):
    """Plain JSON lines (every field, a cut last line) and one Parquet file per batch, as written before."""
    lines = [orjson.dumps({"ts": "2026-11-25T10:47:00.365+00:00", "model_version": "5", "applicant": applicant(i),
                           "probability": 0.5, "decision": "granted"}) for i in (1, 2, 3)]
    (tmp_path / "requests-4242.jsonl").write_bytes(b"\n".join(lines) + b"\n" + lines[0][:30])
    old_batch = pd.DataFrame([applicant(i) for i in (7, 8)]).assign(probability=0.5, decision="granted",
                                                                    model_version="5", ts="2026-11-25T10:48:00")
    old_batch.to_parquet(tmp_path / "batch-20261125T104800123456-4242.parquet", index=False)
    log = pl.ProductionLog(tmp_path, limits())
    log.single(applicant(9), 0.5, "granted", "7")
    read = pl.read_production_log(tmp_path)
    assert sorted(read.applicants["SK_ID_CURR"].astype(int)) == [1, 2, 3, 7, 8, 9]
    assert read.skipped_lines == 1 and read.files == 3
    assert {pl.writer_pid(p) for p in tmp_path.iterdir()} == {4242, os.getpid()}
    log.close()


def test_damaged_or_unfinished_files_give_what_they_hold(tmp_path):
    """Gzip members one after the other, bytes that are not gzip after a whole member, a stream cut inside its last
    line, an Arrow file made but not yet written, a file that is not Arrow: nothing raises, what is whole is read."""
    def lines(*ids: int) -> bytes:
        return b"".join(pl.applicant_line(applicant(i), 0.5, "granted", "7", "production", "t") for i in ids)

    (tmp_path / "requests-1-0.jsonl.gz").write_bytes(gzip.compress(lines(1, 2)) + gzip.compress(lines(3)))
    (tmp_path / "requests-2-0.jsonl.gz").write_bytes(gzip.compress(lines(4)) + b"not gzip")
    (tmp_path / "requests-3-0.jsonl.gz").write_bytes(gzip.compress(lines(5, 6))[:-12])
    (tmp_path / "batch-4-0.arrows").write_bytes(b"")
    (tmp_path / "batch-5-0.arrows").write_bytes(b"not an Arrow stream")
    read = pl.read_production_log(tmp_path)
    assert sorted(read.applicants["SK_ID_CURR"].astype(int)) == [1, 2, 3, 4, 5]
    assert read.skipped_lines == 3 and read.files == 5


def test_a_sample_is_seeded_and_bounded(tmp_path):
    log = pl.ProductionLog(tmp_path, limits())
    for i in range(300):
        log.single(applicant(i), 0.5, "granted", "7")
    batch(log, range(1000, 1200))
    log.close()
    first, again = (pl.read_production_log(tmp_path, max_rows=50, seed=3) for _ in range(2))
    other = pl.read_production_log(tmp_path, max_rows=50, seed=4)
    ids = first.applicants["SK_ID_CURR"].tolist()
    assert len(ids) == 50 and first.rows_logged == 500 and len(set(ids)) == 50
    assert ids == [i for i in logged_ids(tmp_path) if i in set(ids)]  # in the order of the log
    assert ids == again.applicants["SK_ID_CURR"].tolist() != other.applicants["SK_ID_CURR"].tolist()
    assert len(pl.read_production_log(tmp_path, max_rows=600).applicants) == 500


# ---- rotation ------------------------------------------------------------------------------------------------------
def test_files_rotate_by_size_and_each_closed_file_is_whole(tmp_path):
    log = pl.ProductionLog(tmp_path, limits(max_file_mb=0.002))
    for i in range(N_SINGLE):
        log.single(applicant(i, AMT_CREDIT=i * 7919 % 100_003), 0.5, "granted", "7")
    for start in range(100_000, 100_400, 100):
        batch(log, range(start, start + 100))
    lines = sorted(tmp_path.glob("requests-*.jsonl.gz"))
    arrows = sorted(tmp_path.glob("batch-*.arrows"))
    assert len(lines) >= 3 and len(arrows) == 4  # a 100-row batch is larger than 2 kB: one file each
    current = log.lines.path
    assert log.lines.handle is not None and not is_whole(current) and log.batches.handle is None
    assert all(is_whole(p) and p.stat().st_size >= 2000 for p in [*lines, *arrows] if p != current)
    log.close()
    assert is_whole(current)
    assert sorted(logged_ids(tmp_path)) == [*range(N_SINGLE), *range(100_000, 100_400)]


def test_files_rotate_by_time_of_the_injected_clock(tmp_path):
    clock = FakeClock(1_800_000_000.0)
    log = pl.ProductionLog(tmp_path, limits(max_file_minutes=10, retention_days=1000), clock)  # 2027: in the future
    log.single(applicant(1), 0.5, "granted", "7")
    clock.now += 599
    log.single(applicant(2), 0.5, "granted", "7")
    assert len(list(tmp_path.iterdir())) == 1
    clock.now += 1
    log.single(applicant(3), 0.5, "granted", "7")
    first, second = sorted(tmp_path.iterdir())
    assert first.name == f"requests-20270115T080000Z-{os.getpid()}-0.jsonl.gz" and is_whole(first)
    assert second.name.startswith("requests-20270115T081000Z-") and not is_whole(second)
    assert logged_ids(tmp_path) == [1, 2, 3]
    log.close()


def test_nothing_is_made_before_the_first_write_and_defaults_come_from_params_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    log = pl.ProductionLog(tmp_path)
    assert log.settings == SETTINGS.production_log and list(tmp_path.iterdir()) == []
    log.close()
    assert list(tmp_path.iterdir()) == []


# ---- retention -----------------------------------------------------------------------------------------------------
def aged(path: Path, when: float, size: int = 100) -> Path:
    path.write_bytes(b"x" * size)
    os.utime(path, (when, when))
    return path


def test_retention_deletes_old_files_but_none_a_writer_holds(tmp_path):
    now = time.time()
    clock = FakeClock(now)
    keep = {aged(tmp_path / "README.md", now - 400 * DAY), aged(tmp_path / ".gitignore", now - 400 * DAY),
            aged(tmp_path / "requests-11-20.jsonl.gz", now - 29 * DAY), aged(tmp_path / "batch-4.arrows", now - DAY)}
    old = {aged(tmp_path / "requests-11.jsonl", now - 31 * DAY),
           aged(tmp_path / "batch-20261001T000000123456-11.parquet", now - 90 * DAY),
           aged(tmp_path / "requests-20261001T000000Z-11-0.jsonl.gz", now - 31 * DAY)}
    idle = pl.ProductionLog(tmp_path, limits(), clock)  # another writer, idle for 40 days
    idle.single(applicant(1), 0.5, "granted", "7")
    os.utime(idle.lines.path, (now - 40 * DAY, now - 40 * DAY))
    log = pl.ProductionLog(tmp_path, limits(retention_days=30), clock)
    log.single(applicant(2), 0.5, "granted", "7")  # a new file: retention runs
    assert set(tmp_path.iterdir()) == keep | {idle.lines.path, log.lines.path}
    idle.close()
    clock.now += 31 * DAY  # the next write rotates (age), and 31 days later everything closed is old
    log.single(applicant(3), 0.5, "granted", "7")
    assert set(tmp_path.iterdir()) == {tmp_path / "README.md", tmp_path / ".gitignore", log.lines.path}
    assert logged_ids(tmp_path) == [3] and not old & set(tmp_path.iterdir())
    log.close()


def test_the_size_cap_deletes_the_oldest_files_first(tmp_path):
    now = time.time()
    files = [aged(tmp_path / f"requests-{i}.jsonl", now - (10 - i) * 3600, 10_000) for i in range(5)]
    log = pl.ProductionLog(tmp_path, limits(max_total_gb=25e-6), FakeClock(now))  # 25 kB
    log.single(applicant(1), 0.5, "granted", "7")
    assert set(tmp_path.iterdir()) == {*files[3:], log.lines.path}
    log.close()


def test_retention_never_deletes_a_file_being_written(tmp_path):
    """The size cap can't be met by deleting another writer's current file: it stays."""
    other = pl.ProductionLog(tmp_path, limits())
    batch(other, range(1000, 1100))
    log = pl.ProductionLog(tmp_path, limits(max_total_gb=1e-9))
    log.single(applicant(1), 0.5, "granted", "7")
    assert set(tmp_path.iterdir()) == {other.batches.path, log.lines.path}
    other.close()
    log.close()


# ---- exactly once ----------------------------------------------------------------------------------------------
def test_concurrent_threads_log_each_row_exactly_once(tmp_path):
    log = pl.ProductionLog(tmp_path, limits(max_file_mb=0.002))

    def write(thread: int) -> list[int]:
        base, written = thread * 10_000, []
        for i in range(150):
            log.single(applicant(base + i), 0.5, "granted", "7")
            written.append(base + i)
        for start, n in ((base + 1000, 5), (base + 2000, 70)):  # JSON lines, Arrow
            batch(log, range(start, start + n))
            written += range(start, start + n)
        return written

    with ThreadPoolExecutor(8) as pool:
        expected = sorted(i for ids in pool.map(write, range(8)) for i in ids)
    log.close()
    assert sorted(logged_ids(tmp_path)) == expected
    assert len(list(tmp_path.glob("requests-*"))) > 8 and all(is_whole(p) for p in tmp_path.iterdir())


def test_several_processes_write_one_folder(tmp_path):
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(k * 100_000), "400", "0.01"],
                                cwd=REPO, stdout=subprocess.DEVNULL) for k in range(2)]
    try:
        codes = [w.wait(timeout=120) for w in writers]
    finally:
        for w in writers:
            w.kill()
    assert codes == [0, 0]
    ids = logged_ids(tmp_path)
    assert len(ids) == len(set(ids)) and {i // 100_000 for i in ids} == {0, 1}
    assert sorted(ids) == [k * 100_000 + i for k in range(2) for i in range(len(ids) // 2)]
    assert {pl.writer_pid(p) for p in tmp_path.iterdir()} == {w.pid for w in writers}
    assert all(is_whole(p) for p in tmp_path.iterdir())


def test_a_killed_writer_loses_no_acknowledged_row(tmp_path):
    """SIGKILL while writing (files rotate every 10 kB): every row acknowledged before the kill is read once, and
    only the request in flight may be missing or cut."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "0", "-1", "0.01"], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    acked: list[tuple[int, int]] = []
    try:
        while sum(n for _, n in acked) < 3000:
            line = writer.stdout.readline()
            assert line, "the writer stopped by itself"
            acked.append(tuple(map(int, line.split())))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        acked += [tuple(map(int, line.split())) for line in writer.stdout.read().splitlines()  # and what is buffered
                  if len(line.split()) == 2]  # an acknowledgement the kill cut mid-line was not given
    finally:
        writer.kill()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    expected = [i for first, n in acked for i in range(first, first + n)]
    read = pl.read_production_log(tmp_path)
    ids = read.applicants["SK_ID_CURR"].astype(int).tolist()
    in_flight = set(ids) - set(expected)
    assert len(ids) == len(set(ids)) and set(expected) <= set(ids)
    assert not in_flight or min(in_flight) == expected[-1] + 1 and len(in_flight) <= 80
    assert read.skipped_lines <= 2 and len(list(tmp_path.iterdir())) > 5


def test_the_service_logs_every_answer_once(tiny_project, small_data, tmp_path):
    """Concurrent POST /score and /score/batch through the service's own code: one row per answered applicant."""
    api = build_api(tiny_project, registry=False, production_log=False)
    api.service.log = pl.ProductionLog(tmp_path, limits(max_file_mb=0.02))
    bodies = request_schema.records(small_data.tables["application_test"].head(120 + 5 * pl.SMALL_BATCH))

    def send(i: int) -> int:
        if i % 12 == 11:  # 11 applicants (JSON lines), or 11 + 64 (Arrow), each SK_ID_CURR once in its batch
            more = 120 + (i // 24) * pl.SMALL_BATCH
            body = {"applicants": bodies[i - 11:i] + (bodies[more:more + pl.SMALL_BATCH] if i % 24 == 23 else [])}
            reply = api.handle("POST", "/score/batch", orjson.dumps(body), "application/json", "reasons=0")
            return len(body["applicants"]) if reply.status == 200 else 0
        reply = api.handle("POST", "/score", orjson.dumps(bodies[i]), "application/json", "reasons=1")
        return 1 if reply.status == 200 else 0

    with ThreadPoolExecutor(6) as pool:
        answered = sum(pool.map(send, range(120)))
    api.service.log.close()
    read = pl.read_production_log(tmp_path)
    assert answered == len(read.applicants) == 110 + 10 * 11 + 5 * pl.SMALL_BATCH
    assert read.applicants["probability"].between(0, 1).all() and read.skipped_lines == 0
    assert any(p.suffix == ".arrows" for p in tmp_path.iterdir())

