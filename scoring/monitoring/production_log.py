"""The scoring service's production log: written by the service (`ProductionLog`), read back by the drift stage.

Formats (one folder, `paths.production`; each process writes its own files, never another's):

* `requests-<UTC start>Z-<pid>-<n>.jsonl.gz`: single requests, and batches of fewer than `SMALL_BATCH` applicants,
  one scored applicant per line, `{"ts": ISO time, "model_version": "5", "applicant": {its non-null application
  fields}, "probability": 0.12, "decision": "granted" | "refused", "traffic": "production" | "test" | "preview"}`,
  in one gzip stream flushed (Z_SYNC_FLUSH) after each request: `zcat file | jq .` reads it, even while it is written.
* `batch-<UTC start>Z-<pid>-<n>.arrows`: larger batches, one Arrow IPC stream (LZ4-compressed buffers), one record
  batch per request: the contract's application fields (numbers as float64, categories as strings) plus the same
  five columns. `pyarrow.ipc.open_stream(path).read_pandas()`, `polars.read_ipc_stream(path)` read it.
* Read, never written any more: `requests-<pid>.jsonl` (plain JSON lines, every field) and one Parquet file per
  batch request (`batch-<time>-<pid>.parquet`).

Durability: each request's rows reach the operating system (one write after the compressor's flush) before the
method returns, so before the service answers; nothing is buffered in the process. A process killed mid-write leaves
a gzip stream without its trailer and an Arrow stream without its end marker: both read up to the last whole line or
record batch (a cut line or batch is skipped and counted, and it was never answered). Parquet was not chosen for
batches: a file without its footer (a killed writer) cannot be read at all, and one file per request costs ~70 KB
for one applicant.

Rotation and retention (params.yaml `production_log`), by the writer: a file past `max_file_mb` on disk (checked
after each write) or opened `max_file_minutes` ago (checked before each write) is closed whole (gzip trailer, Arrow
end marker) and the next write starts another. Each new file is created under a hidden name, locked (`flock`) and
only then linked under its real name, so another process never sees a log file that is being written and not
locked. At each new file the writer deletes the folder's log files older than `retention_days` (modification
time), then the oldest until the folder holds at most `max_total_gb`; locked files (another process's, or its own,
current files) are never deleted. Old-format files are pruned alike; README.md and .gitignore are not log files.

Measured on the shared 2-core machine (application_test rows: 121 contract fields, 25% null; medians):

* single request: 3,314 B per applicant before (plain JSON, every field), 378 B now (2,572 B without nulls, then
  gzip level 1 with a sync flush per write); the requests Ray Serve answers together are written at once: 344 B and
  about 17 us per applicant for 16 (line 7, compress and write 10), against 7-10 us before.
* batch request, before: one Parquet file per request, 77 KB for one applicant, 1.5 KB each for 64, 271 B for
  1,000, 7-30 ms a request. Now, under `SMALL_BATCH` (64) applicants: JSON lines, 210-255 B each, 0.1 ms for one,
  3.4 ms for 63; from 64: Arrow, 585 B each for 64, 343 B for 1,000, 313 B for 5,000; 1.2 + 1.2 ms (convert,
  compress and write) for 1,000, 7.8 + 4.9 ms for 5,000. ZSTD would save a third of the bytes (232 B for 1,000) at
  four times the write (4.6 ms for 1,000: a codec context per buffer, 126 columns); a one-row Arrow batch costs
  8-12 KB of metadata, hence the JSON lines below 64.

The reader reads every format, keeps production traffic only (`traffic` missing or "production"), and works file by
file, in chunks: with `max_rows` it keeps a seeded uniform sample (bottom-k on random keys, mergeable chunk by chunk),
so its memory is bounded however large the log is.
"""
from __future__ import annotations

import atexit
import fcntl
import gzip
import io
import json
import logging
import os
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoring import contract
from scoring.serving.traffic import PRODUCTION
from scoring.settings import ProductionLogSettings, load_settings

if TYPE_CHECKING:
    from scoring.serving.engine import Scores

logger = logging.getLogger(__name__)
LOG_FIELDS = ("ts", "model_version", "probability", "decision", "traffic")
APPLICATION = contract.table("application_test")
APPLICATION_NAMES = frozenset(APPLICATION.names)
COLUMNS = [*APPLICATION.names, *LOG_FIELDS]
NUMBERS = {*(c.name for c in APPLICATION.columns if c.is_numeric), "probability"}
LINES, ARROW = ".jsonl.gz", ".arrows"
LOG_PATTERNS = ("*.jsonl", "*.jsonl.gz", "*.arrows", "*.parquet")
NAME = re.compile(r"^(?:requests|batch)-(?:\d{8}T\d+Z?-)?(?P<pid>\d+)(?:-\d+)?\.")
SMALL_BATCH = 64
"""Batches with fewer applicants are logged as JSON lines: an Arrow record batch carries ~8 KB of metadata."""
GZIP_LEVEL = 1
"""zlib level of the JSON lines (about 2.6 KB each, plain): level 1 makes 378 B a line at 19 us, 344 B at 10 us when
Ray Serve's batching writes 16 lines at once (level 6: 237 B at 28 us, 206 B at 20 us): the log is on the hot path."""
READ_BYTES = 1 << 20
LINES_PER_CHUNK = 20_000
CHUNK_ROWS, CHUNK_LINES = 20_000, 5_000
"""Rows the reader gathers, across files, before it makes one frame of them: Arrow rows, parsed JSON lines (a dict of
about 100 fields is about 8 KB)."""
SCHEMA = pa.schema([pa.field(c.name, pa.float64() if c.is_numeric else pa.string()) for c in APPLICATION.columns]
                   + [pa.field("ts", pa.string()), pa.field("model_version", pa.string()),
                      pa.field("probability", pa.float64()), pa.field("decision", pa.string()),
                      pa.field("traffic", pa.string())])
ARROW_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)
Clock = Callable[[], float]


# ---- what one request logs --------------------------------------------------------------------------------------
def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def applicant_line(applicant: dict[str, Any], probability: float, decision: str, version: str | None,
                   traffic: str, ts: str) -> bytes:
    """One JSON line; the applicant's null fields are left out (the reader puts them back as missing)."""
    fields = {key: value for key, value in applicant.items() if value is not None}
    return orjson.dumps({"ts": ts, "model_version": version, "applicant": fields, "probability": probability,
                         "decision": decision, "traffic": traffic}, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def is_value(value: Any) -> bool:
    """Not missing: None, NaN and pandas' NA are."""
    return value is not None and value is not pd.NA and value == value


def batch_lines(frame: pd.DataFrame, scores: Scores, version: str | None, traffic: str, ts: str) -> bytes:
    """A small batch as JSON lines, one per applicant."""
    names, rows = list(frame.columns), frame.to_numpy(dtype=object).tolist()
    return b"".join(applicant_line({name: value for name, value in zip(names, row) if is_value(value)}, p, d,
                                   version, traffic, ts)
                    for row, p, d in zip(rows, np.asarray(scores.probability).tolist(),
                                         np.asarray(scores.decisions).tolist()))


def column_array(values: pd.Series | None, kind: pa.DataType, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, kind)
    return pa.array(values.to_numpy(), from_pandas=True).cast(kind)


def batch_record(frame: pd.DataFrame, scores: Scores, version: str | None, traffic: str, ts: str) -> pa.RecordBatch:
    """A batch as one Arrow record batch of `SCHEMA`: the contract's fields (absent ones null) and the log's five."""
    n = len(frame)
    arrays = [column_array(frame.get(name), SCHEMA.field(name).type, n)
              for name in APPLICATION.names]
    arrays += [pa.array([ts] * n, pa.string()), pa.array([version] * n, pa.string()),
               pa.array(np.asarray(scores.probability, dtype="float64")),
               pa.array(np.asarray(scores.decisions).tolist(), pa.string()), pa.array([traffic] * n, pa.string())]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


# ---- the two file formats ------------------------------------------------------------------------------------------
class GzipLines:
    """JSON lines in one gzip stream; each write is flushed with Z_SYNC_FLUSH, so the lines written so far can be
    decompressed from the file at any time (and the compression still uses the lines before)."""

    suffix = LINES

    def __init__(self, handle: BinaryIO):
        self.gzip = gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=handle)

    def write(self, lines: bytes) -> None:
        self.gzip.write(lines)
        self.gzip.flush(zlib.Z_SYNC_FLUSH)  # also flushes the file object: the bytes are the OS's

    def close(self) -> None:
        self.gzip.close()  # the trailer (CRC, size); leaves the file object open


class ArrowStream:
    """An Arrow IPC stream, one record batch per write; each batch is serialised in memory, then written at once."""

    suffix = ARROW

    def __init__(self, handle: BinaryIO):
        self.handle, self.pending = handle, io.BytesIO()
        self.writer = pa.ipc.new_stream(pa.PythonFile(self.pending, mode="w"), SCHEMA, options=ARROW_OPTIONS)

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)
        self.drain()

    def drain(self) -> None:
        self.handle.write(self.pending.getvalue())
        self.handle.flush()
        self.pending.seek(0)
        self.pending.truncate()

    def close(self) -> None:
        self.writer.close()  # the end-of-stream marker
        self.drain()


# ---- one process's current file, rotated -------------------------------------------------------------------------
def create_locked(directory: Path, prefix: str, suffix: str, now: float) -> tuple[Path, BinaryIO]:
    """A new file of this process, locked before it is visible: made under a hidden name, locked, then linked under
    its real name (`os.link` never replaces a file: a name taken, by a restarted process with the same pid, moves
    on to the next number)."""
    stamp, pid = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)), os.getpid()
    hidden = directory / f".{prefix}-{pid}-{threading.get_ident()}.new"
    hidden.unlink(missing_ok=True)  # a name left by a killed process: maybe a link to a log file, never truncated
    handle = open(hidden, "xb")  # noqa: SIM115 - open while the file is written, closed at rotation
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    number = 0
    while True:
        path = directory / f"{prefix}-{stamp}Z-{pid}-{number}{suffix}"
        try:
            os.link(hidden, path)
            break
        except FileExistsError:
            number += 1
    hidden.unlink()
    return path, handle


class RotatingFile:
    """The current file of one format for this process: made at the first write, closed whole and replaced past
    the size or age limit; each new file triggers the folder's retention. Thread-safe; a forked child starts its
    own file and leaves its parent's alone."""

    def __init__(self, directory: Path, prefix: str, kind: type[GzipLines] | type[ArrowStream],
                 limits: ProductionLogSettings, clock: Clock):
        self.directory, self.prefix, self.kind, self.limits, self.clock = directory, prefix, kind, limits, clock
        self.lock = threading.Lock()
        self.handle: BinaryIO | None = None
        self.stream: GzipLines | ArrowStream | None = None
        self.path: Path | None = None
        self.opened_at, self.pid = 0.0, 0

    def write(self, payload: Any) -> None:
        with self.lock:
            now = self.clock()
            if self.handle is not None and self.pid != os.getpid():
                self.handle = self.stream = None  # the parent's file, inherited by fork: not ours to close
            if self.handle is not None and now - self.opened_at >= self.limits.max_file_minutes * 60:
                self.close_file()
            if self.handle is None:
                self.open_file(now)
            self.stream.write(payload)
            if self.handle.tell() >= self.limits.max_file_mb * 1e6:
                self.close_file()

    def open_file(self, now: float) -> None:
        self.path, self.handle = create_locked(self.directory, self.prefix, self.kind.suffix, now)
        self.stream, self.opened_at, self.pid = self.kind(self.handle), now, os.getpid()
        try:
            enforce_retention(self.directory, self.limits, now)
        except OSError:  # housekeeping: the request is still logged, and the next new file tries again
            logger.exception("production log %s: retention failed", self.directory)

    def close_file(self) -> None:
        if self.handle is not None and self.pid == os.getpid():
            self.stream.close()
            self.handle.close()  # releases the lock: from now on retention may delete it
            logger.debug("production log: closed %s", self.path)
        self.handle = self.stream = None

    def close(self) -> None:
        with self.lock:
            self.close_file()


# ---- retention ---------------------------------------------------------------------------------------------------
def log_files(directory: Path) -> list[Path]:
    """The log's files in `directory`, every format (hidden files, README.md and .gitignore are not)."""
    if not directory.is_dir():
        return []
    return sorted({p for pattern in LOG_PATTERNS for p in directory.glob(pattern) if not p.name.startswith(".")})


def writer_pid(path: Path) -> int | None:
    """The process that wrote a log file, from its name (every format)."""
    match = NAME.match(path.name)
    return int(match["pid"]) if match else None


def delete_unless_open(path: Path) -> bool:
    """Delete a log file unless a writer holds its lock (its current file); False if it was kept or already gone."""
    try:
        with path.open("rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink()
        return True
    except (BlockingIOError, FileNotFoundError):
        return False


def file_ages(directory: Path) -> list[tuple[Path, os.stat_result]]:
    """Log files with their stat, oldest modification first (files deleted meanwhile left out)."""
    found = []
    for path in log_files(directory):
        try:
            found.append((path, path.stat()))
        except FileNotFoundError:
            continue
    return sorted(found, key=lambda item: item[1].st_mtime)


def enforce_retention(directory: Path, limits: ProductionLogSettings, now: float) -> list[Path]:
    """Delete the log files last written before `now - retention_days`, then the oldest while the folder holds
    more than `max_total_gb`; files a writer holds are kept. Returns the deleted files."""
    files = file_ages(directory)
    horizon, budget = now - limits.retention_days * 86400, limits.max_total_gb * 1e9
    total, deleted = sum(stat.st_size for _, stat in files), []
    for path, stat in files:
        if stat.st_mtime >= horizon and total <= budget:
            break
        if delete_unless_open(path):
            total -= stat.st_size
            deleted.append(path)
    if deleted:
        logger.info("production log %s: %d file(s) deleted (retention %g days, at most %g GB; %.1f MB left)",
                    directory, len(deleted), limits.retention_days, limits.max_total_gb, total / 1e6)
    return deleted


# ---- the writer ----------------------------------------------------------------------------------------------------
class ProductionLog:
    """What the service saw and answered (the module's docstring says how). One set of files per process, made at
    the first request: a service that answered nothing leaves nothing, so the drift stage has no reason to rerun.
    `settings` default to params.yaml's `production_log` (of the working directory); `clock` (epoch seconds) is
    the time of rows, file names, rotation and retention."""

    def __init__(self, directory: Path, settings: ProductionLogSettings | None = None, clock: Clock = time.time):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.settings = settings if settings is not None else load_settings().production_log
        self.clock = clock
        self.lines = RotatingFile(self.directory, "requests", GzipLines, self.settings, clock)
        self.batches = RotatingFile(self.directory, "batch", ArrowStream, self.settings, clock)
        atexit.register(self.close)

    def single(self, applicant: dict[str, Any], probability: float, decision: str, version: str | None,
               traffic: str = PRODUCTION) -> None:
        self.singles([applicant], [probability], [decision], version, [traffic])

    def singles(self, applicants: list[dict[str, Any]], probabilities: list[float], decisions: list[str],
                version: str | None, traffic: list[str]) -> None:
        """Requests answered together (Ray Serve's batching): their lines in one write and one flush."""
        ts = iso_time(self.clock())
        self.lines.write(b"".join(applicant_line(a, p, d, version, kind, ts)
                                  for a, p, d, kind in zip(applicants, probabilities, decisions, traffic)))

    def batch(self, frame: pd.DataFrame, scores: Scores, version: str | None, traffic: str = PRODUCTION) -> None:
        ts = iso_time(self.clock())
        if len(frame) < SMALL_BATCH:
            self.lines.write(batch_lines(frame, scores, version, traffic, ts))
        else:
            self.batches.write(batch_record(frame, scores, version, traffic, ts))

    def close(self) -> None:
        """Close the current files whole (also at interpreter exit); the next request starts new ones."""
        self.lines.close()
        self.batches.close()


# ---- the reader ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoggedApplicants:
    applicants: pd.DataFrame
    """Contract application columns (numbers float64) plus ts, model_version, probability, decision and traffic, one
    row per scored applicant of production traffic (all of them, or the sample `max_rows` asked for), as logged: a value
    that is not a number where one is due is missing, the others are kept (the values the contract refuses are counted
    in `out_of_contract`)."""
    files: int
    skipped_lines: int
    """Lines, record batches or files that could not be read (a write cut short), skipped."""
    rows_logged: int | None = None
    """Production rows in the log, before any sampling."""
    left_out: int = 0
    """Rows of test or preview traffic (or of an unknown kind), not read."""
    first_ts: str | None = None
    last_ts: str | None = None
    """The time window of the production rows (all of them, not only the sample), ISO 8601 in UTC."""
    out_of_contract: dict[str, int] = field(default_factory=dict)
    """Per application field, the production values the data contract refuses (see `contract_breaches`, and a value
    that is not a number where a number is due), counted over every production row read."""


def raw_blocks(path: Path) -> Iterator[bytes]:
    """The bytes of a JSON-lines file, plain or gzip; a gzip stream cut short (a writer still writing, or killed)
    gives what it holds so far. zlib.error if the data is not gzip."""
    with path.open("rb") as handle:
        chunks = iter(lambda: handle.read(READ_BYTES), b"")
        if not path.name.endswith(".gz"):
            yield from chunks
            return
        inflate = zlib.decompressobj(wbits=31)
        for chunk in chunks:
            while chunk:
                yield inflate.decompress(chunk)
                chunk = inflate.unused_data if inflate.eof else b""
                if inflate.eof:
                    inflate = zlib.decompressobj(wbits=31)  # the next gzip member, if any


def line_chunks(path: Path) -> Iterator[list[bytes]]:
    """The lines of a JSON-lines file, `LINES_PER_CHUNK` or more a list; a last line without its newline (a write
    cut short, or still going on) comes last. zlib.error, after the lines before it, where the data is not gzip."""
    rest, lines = b"", []
    try:
        for block in raw_blocks(path):
            *whole, rest = (rest + block).split(b"\n")
            lines += whole
            if len(lines) >= LINES_PER_CHUNK:
                yield lines
                lines = []
    except zlib.error as error:  # the lines before it still count
        yield lines
        raise error
    if rest.strip():
        lines.append(rest)
    if lines:
        yield lines


def parse_line(line: bytes) -> dict[str, Any]:
    """One logged applicant: its fields and the log's five. A line orjson refuses is read again by the standard
    library, which takes what other writers may have written: NaN and Infinity (kept as text, so not numbers),
    1e999 (infinite), integers beyond 64 bits."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        try:
            entry = json.loads(line, parse_constant=str)
        except (ValueError, RecursionError):
            raise error from None
    if not isinstance(entry, dict) or not isinstance(entry["applicant"], dict):
        raise TypeError("not an object with an 'applicant' object")
    return {**entry["applicant"], **{k: entry.get(k) for k in LOG_FIELDS}}


def line_records(path: Path) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Scored applicants of one JSON-lines file, chunk by chunk, with the lines skipped (not one: a cut write)."""
    read = 0
    try:
        for lines in line_chunks(path):
            records, skipped = [], 0
            for number, line in enumerate(lines, read + 1):
                if not line.strip():
                    continue
                try:
                    records.append(parse_line(line))
                except (orjson.JSONDecodeError, KeyError, TypeError) as error:
                    skipped += 1
                    logger.warning("%s:%d: not a scored applicant (%s): skipped", path, number, str(error)[:200])
            read += len(lines)
            yield records, skipped
    except zlib.error as error:
        logger.warning("%s: unreadable after line %d (%s): the rest skipped", path, read, error)
        yield [], 1


def read_log_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Scored applicants of one JSON-lines file (plain or gzip) and the number of lines skipped."""
    records, skipped = [], 0
    for chunk, bad in line_records(path):
        records += chunk
        skipped += bad
    return records, skipped


def arrow_batches(path: Path) -> Iterator[tuple[pa.RecordBatch | None, int]]:
    """Record batches of an Arrow stream; one cut short (a writer still writing, or killed) ends it, counted."""
    if path.stat().st_size == 0:
        return  # made, nothing written yet
    with pa.OSFile(str(path)) as source:
        try:
            for batch in pa.ipc.open_stream(source):
                yield batch, 0
        except (pa.ArrowException, OSError) as error:
            logger.warning("%s: a record batch cut short (%s): skipped", path, error)
            yield None, 1


def parquet_batches(path: Path) -> Iterator[tuple[pa.RecordBatch | None, int]]:
    """An older per-request batch file, in slices."""
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65536):
            yield batch, 0
    except (pa.ArrowException, OSError) as error:
        logger.warning("%s: not a readable Parquet file (%s): skipped", path, error)
        yield None, 1


def as_numbers(values: pd.Series) -> np.ndarray:
    """float64; what is not a number (text, a list, an object) becomes NaN, an integer beyond any float infinite."""
    if values.dtype != object:
        return values.to_numpy(dtype="float64", na_value=np.nan)
    try:
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    except OverflowError:  # an integer beyond float64 (the standard library's JSON reads 10**400 exactly)
        return np.array([float_or_nan(v) for v in values], dtype="float64")


def float_or_nan(value: Any) -> float:
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return np.inf if value > 0 else -np.inf
    return np.nan


def shaped(frame: pd.DataFrame, columns: list[str] = COLUMNS, junk: Counter | None = None) -> pd.DataFrame:
    """The log's columns (all, or `columns`) in one shape whatever the file: numbers float64, the others objects. A
    value that is not a number in a number column becomes missing, counted per field in `junk` when given."""
    out = {}
    for name in columns:
        if name not in frame:
            out[name] = np.full(len(frame), np.nan) if name in NUMBERS else np.full(len(frame), None, dtype=object)
        elif name in NUMBERS:
            out[name] = as_numbers(frame[name])
            if junk is not None and frame[name].dtype == object:
                junk[name] += int((frame[name].notna().to_numpy() & np.isnan(out[name])).sum())
        else:
            out[name] = frame[name].to_numpy(dtype=object)
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def records_frame(records: list[dict[str, Any]], columns: list[str], junk: Counter) -> pd.DataFrame:
    """Parsed JSON lines in the log's shape (`shaped`'s), column by column: no frame of dicts on the way (each
    record completed with None, its values taken at once, the rows transposed)."""
    template, take = dict.fromkeys(columns), itemgetter(*columns)
    rows = [take({**template, **record}) for record in records]
    out = {}
    for name, values in zip(columns, zip(*rows) if len(columns) > 1 else [[row] for row in rows]):
        if name not in NUMBERS:
            out[name] = pd.Series(values, dtype=object).to_numpy()
            continue
        try:
            numbers = np.array(values, dtype="float64")
            if numbers.ndim != 1:
                raise ValueError("a list where a number is due")
        except (ValueError, TypeError, OverflowError):  # text, lists, objects, integers beyond float64
            series = pd.Series(values, dtype=object)
            numbers = as_numbers(series)
            junk[name] += int((series.notna().to_numpy() & np.isnan(numbers)).sum())
        out[name] = numbers
    return pd.DataFrame(out, index=pd.RangeIndex(len(records)))


def contract_breaches(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per application column of `frame`, the values present that the data contract refuses: a number NaN-free but
    infinite, outside the plausible range (Kaggle's sentinels allowed), or not whole where whole numbers are due; a
    category that is not one of the contract's (or not text). Missing values break nothing."""
    out = {}
    for name in frame.columns:
        if name not in APPLICATION_NAMES:
            continue
        col = APPLICATION.column(name)
        if col.kind == "category":
            values = frame[name]
            text = values.map(type).eq(str).to_numpy()
            out[name] = values.notna().to_numpy() & ~(text & values.where(text).isin(col.categories).to_numpy())
        else:
            out[name] = number_breaches(frame[name].to_numpy(dtype="float64"), col)
    return out


def number_breaches(values: np.ndarray, col: contract.Column) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values)
        if col.min is not None:
            bad |= values < col.min
        if col.max is not None:
            bad |= values > col.max
        if col.sentinel is not None:
            bad &= values != col.sentinel
        if col.whole:
            bad |= np.isfinite(values) & (values != np.floor(values))
    return bad


def without_breaches(frame: pd.DataFrame, breaches: dict[str, np.ndarray]) -> pd.DataFrame:
    """`frame` with the refused values read as missing (NaN for numbers, None for categories); only the columns
    changed are copied."""
    out = frame.copy(deep=False)
    for name, bad in breaches.items():
        if bad.any():
            out[name] = frame[name].mask(bad, np.nan if name in NUMBERS else None)
    return out


def is_production(traffic: pd.Series) -> np.ndarray:
    return (traffic.isna() | (traffic == PRODUCTION)).to_numpy()  # older logs have no traffic: production


def utc_times(values: pd.Series) -> pd.Series:
    """ISO 8601 times as UTC timestamps (a time without a zone is taken as UTC); anything else NaT."""
    text = values.where(values.map(type).eq(str))
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")


class LogScan:
    """The production rows of a log folder, read file by file and handed over in frames of about `CHUNK_ROWS` rows:
    the rows of small files are gathered first (a rotated log holds thousands of small files; the cost of one is a
    read, not a frame). Test and preview traffic is dropped before it is decoded into columns; each field is checked
    against the data contract and its refused values counted. Counts what it read."""

    def __init__(self, directory: Path, columns: list[str] = COLUMNS):
        self.paths = log_files(Path(directory))
        self.columns = list(dict.fromkeys([*columns, "ts"]))
        self.skipped = self.left_out = self.production = 0
        self.first: pd.Timestamp | None = None
        self.last: pd.Timestamp | None = None
        self.out_of_contract: Counter = Counter()
        self.records: list[dict[str, Any]] = []
        self.batches: list[pa.RecordBatch] = []

    def frames(self) -> Iterator[pd.DataFrame]:
        for path in self.paths:
            yield from (self.lines(path) if path.name.endswith((".jsonl", ".jsonl.gz")) else self.tables(path))
        yield from self.flush_records(0)
        yield from self.flush_batches(0)

    def lines(self, path: Path) -> Iterator[pd.DataFrame]:
        for records, bad in line_records(path):
            self.skipped += bad
            kept = [r for r in records if r.get("traffic") is None or r.get("traffic") == PRODUCTION]
            self.left_out += len(records) - len(kept)
            self.records += kept
            yield from self.flush_records(CHUNK_LINES)

    def tables(self, path: Path) -> Iterator[pd.DataFrame]:
        for batch, bad in arrow_batches(path) if path.suffix == ARROW else parquet_batches(path):
            self.skipped += bad
            if batch is not None and batch.num_rows:
                self.batches.append(batch)
            if sum(b.num_rows for b in self.batches) >= CHUNK_ROWS or (batch is not None and
                                                                      not batch.schema.equals(SCHEMA)):
                yield from self.flush_batches(1)

    def flush_records(self, at_least: int) -> Iterator[pd.DataFrame]:
        if self.records and len(self.records) >= at_least:
            records, self.records = self.records, []
            yield self.accepted(records_frame(records, self.columns, self.out_of_contract))

    def flush_batches(self, at_least: int) -> Iterator[pd.DataFrame]:
        """Gathered record batches; the log's own ones (its schema) as one table, older ones one by one."""
        if not self.batches or sum(b.num_rows for b in self.batches) < at_least:
            return
        batches, self.batches = self.batches, []
        ours = [b for b in batches if b.schema.equals(SCHEMA)]
        tables = ([pa.Table.from_batches(ours)] if ours else []) + [pa.Table.from_batches([b]) for b in batches
                                                                     if not b.schema.equals(SCHEMA)]
        for table in tables:
            yield self.accepted(shaped(self.production_table(table).to_pandas(), self.columns, self.out_of_contract))

    def production_table(self, table: pa.Table) -> pa.Table:
        """Production rows only, the NaN of float columns counted (to pandas, NaN and null are both missing)."""
        if "traffic" in table.column_names:
            traffic = table["traffic"].cast(pa.string())
            keep = pc.fill_null(pc.equal(traffic, PRODUCTION), True)
            self.left_out += table.num_rows - pc.sum(keep).as_py() if table.num_rows else 0
            table = table.filter(keep)
        for name in table.column_names:
            if name in APPLICATION_NAMES and pa.types.is_floating(table[name].type):
                self.out_of_contract[name] += pc.sum(pc.is_nan(table[name])).as_py() or 0
        return table

    def accepted(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Production rows of a frame in the log's shape, their refused values counted (`without_breaches` reads
        them as missing)."""
        if "traffic" in frame:
            production = is_production(frame["traffic"])
            self.left_out += int((~production).sum())
            frame = frame[production] if not production.all() else frame
        breaches = contract_breaches(frame)
        self.out_of_contract.update({name: int(bad.sum()) for name, bad in breaches.items() if bad.any()})
        times = utc_times(frame["ts"]).dropna()
        if len(times):
            self.first = min(times.min(), self.first) if self.first is not None else times.min()
            self.last = max(times.max(), self.last) if self.last is not None else times.max()
        self.production += len(frame)
        return frame

    def window(self) -> tuple[str | None, str | None]:
        return tuple(t.isoformat(timespec="milliseconds") if t is not None else None for t in (self.first, self.last))


class RowSample:
    """Production rows kept while reading: all of them, or (with `max_rows`) a uniform sample without replacement,
    seeded: each row draws a random key and the `max_rows` smallest keys are kept, chunk after chunk. Once it holds
    `max_rows` rows, a row whose key is above the largest kept can never be in the sample: it is dropped at once."""

    def __init__(self, max_rows: int | None, seed: int):
        self.max_rows, self.rng = max_rows, np.random.default_rng(seed)
        self.frames: list[pd.DataFrame] = []
        self.kept, self.seen, self.bound = 0, 0, 1.0

    def add(self, frame: pd.DataFrame) -> None:
        n = len(frame)
        if self.max_rows is not None and n:
            keys, order = self.rng.random(n), np.arange(self.seen, self.seen + n)
            below = keys < self.bound
            frame = (frame if below.all() else frame[below]).assign(_key=keys[below], _order=order[below])
        self.seen += n
        if frame.empty:
            return
        self.frames.append(frame)
        self.kept += len(frame)
        if self.max_rows is not None and self.kept > self.max_rows + CHUNK_ROWS:
            self.frames = [self.smallest()]
            self.kept, self.bound = len(self.frames[0]), float(self.frames[0]["_key"].max())

    def smallest(self) -> pd.DataFrame:
        """The `max_rows` rows of smallest keys, in the order they were read: each frame is cut at the key of rank
        `max_rows` before the frames are joined (no copy of the rows left out)."""
        keys = np.concatenate([frame["_key"].to_numpy() for frame in self.frames])
        cutoff = np.partition(keys, self.max_rows - 1)[self.max_rows - 1] if len(keys) > self.max_rows else np.inf
        kept = [frame[frame["_key"].to_numpy() <= cutoff] for frame in self.frames]
        self.frames = []
        out = pd.concat(kept, ignore_index=True)
        return out if len(out) <= self.max_rows else out.nsmallest(self.max_rows, "_key").sort_values("_order")

    def rows(self) -> pd.DataFrame:
        """The rows kept, in the order they were read."""
        if not self.frames:
            return pd.DataFrame(columns=COLUMNS)
        if self.max_rows is None:
            return pd.concat(self.frames, ignore_index=True)
        return self.smallest().drop(columns=["_key", "_order"]).reset_index(drop=True)


def read_production_log(directory: Path, max_rows: int | None = None, seed: int = 0,
                        columns: list[str] | None = None) -> LoggedApplicants:
    """The production traffic the scoring service logged in `directory`, every format (see the module), file by
    file and chunk by chunk; with `max_rows`, a seeded uniform sample of at most that many rows (memory bounded
    by it); with `columns`, only these (and ts). Values the data contract refuses are counted (see
    `LoggedApplicants`). Absent or empty: no rows."""
    scan, sample = LogScan(Path(directory), columns or COLUMNS), RowSample(max_rows, seed)
    for frame in scan.frames():
        sample.add(frame)
    applicants, seen = sample.rows(), sample.seen
    first, last = scan.window()
    breaches = {name: count for name, count in sorted(scan.out_of_contract.items()) if count}
    logger.info("production log %s: %d scored applicants in %d file(s)%s from %s to %s (%d of test or preview "
                "traffic left out), %d entries skipped, %d value(s) out of contract", directory, seen,
                len(scan.paths), f", {len(applicants)} kept" if len(applicants) < seen else "", first, last,
                scan.left_out, scan.skipped, sum(breaches.values()))
    return LoggedApplicants(applicants, len(scan.paths), scan.skipped, seen, scan.left_out, first, last,
                            breaches)


def _share(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def production_details(log: LoggedApplicants) -> dict[str, Any]:
    """What the log covers and what the service itself said: files, rows logged (and sampled), test traffic left
    out, skipped lines, the time window, model versions, logged probabilities and decisions."""
    frame = log.applicants
    logged = pd.to_numeric(frame["probability"], errors="coerce")
    logged = logged[np.isfinite(logged) & logged.between(0, 1)]
    return {"files": log.files, "rows_logged": log.rows_logged, "rows_left_out": log.left_out,
            "skipped_lines": log.skipped_lines, "first_ts": log.first_ts, "last_ts": log.last_ts,
            "model_versions": sorted({str(v)[:40] for v in frame["model_version"].dropna()})[:20],
            "mean_probability_logged": _share(logged.mean()) if len(logged) else None,
            "refused_share": _share((frame["decision"] == "refused").mean()) if len(frame) else None}
