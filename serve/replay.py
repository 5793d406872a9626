"""Replay new applicants through the running scoring service, so that its production log, and with it the next
`dvc repro` (drift stage), sees served traffic.

    python -m serve.replay [--url http://127.0.0.1:8000] [--rows 2000] [--drift | --no-drift] [--clients 8]
    python -m serve.replay --outcomes [--rows 2000] [--outcomes-dir data/outcomes]   # months later: who defaulted

The applicants come from the embedded generator (params.yaml `data.synthetic`), with its drift switched on by
default (`data.synthetic.drift`: higher incomes, younger applicants, lower EXT_SOURCE, rarer organisations). Each is
sent as one `POST /score`, as a lender's front end would, from a few concurrent clients; the service validates,
scores and appends each to its production log. Exits with status 1 if any request fails.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from tqdm import tqdm

from scoring.serving import request_schema
from scoring.settings import SyntheticSettings, configure_logging, load_settings
from scoring.synthetic.outcomes import FIRST_REPLAY_ID, draw_outcomes, replayed_applicants

logger = logging.getLogger("serve.replay")


def replay_applicants(settings: SyntheticSettings, rows: int, drift: bool, seed: int,
                      first_id: int = FIRST_REPLAY_ID) -> pd.DataFrame:
    """`rows` new applicants in Kaggle's application_test schema, from the generator as params.yaml sets it."""
    return replayed_applicants(settings, rows, drift, seed, first_id).drop(columns="TRUE_PD")


@dataclass
class Tally:
    """What the service answered, counted from several client threads."""

    latencies_ms: list[float] = field(default_factory=list)
    refused: int = 0
    probabilities: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, started: float, response: httpx.Response | None, error: str | None) -> None:
        with self.lock:
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response is not None and response.status_code == 200:
                answer = response.json()
                self.probabilities.append(answer["probability"])
                self.refused += answer["decision"] == "refused"
            else:
                self.failures.append(error or f"HTTP {response.status_code}: {response.text[:300]}")

    def summary(self) -> dict[str, Any]:
        scored = len(self.probabilities)
        return {"sent": len(self.latencies_ms), "scored": scored, "failed": len(self.failures),
                "refused_share": round(self.refused / scored, 4) if scored else None,
                "mean_probability": round(float(np.mean(self.probabilities)), 5) if scored else None,
                "p50_ms": round(statistics.median(self.latencies_ms), 2) if self.latencies_ms else None}


def send_all(url: str, bodies: list[dict[str, Any]], clients: int, reasons: int | None,
             progress: bool = True) -> Tally:
    tally = Tally()
    local = threading.local()

    def send(body: dict[str, Any]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=30)
        started = time.perf_counter()
        try:
            query = {} if reasons is None else {"reasons": reasons}
            tally.add(started, local.client.post("/score", params=query, json=body), None)
        except httpx.HTTPError as error:
            tally.add(started, None, f"{type(error).__name__}: {error}")

    with ThreadPoolExecutor(clients) as pool:
        list(tqdm(pool.map(send, bodies), total=len(bodies), unit="applicant", desc="replay", disable=not progress))
    return tally


def replay(url: str, rows: int, drift: bool, clients: int = 8, seed: int = 7, reasons: int | None = None,
           params_path: Path = Path("params.yaml"), progress: bool = True, first_id: int = FIRST_REPLAY_ID
           ) -> dict[str, Any]:
    """Generate, send and count; the summary also carries the replayed SK_ID_CURR range."""
    try:
        httpx.get(f"{url}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as error:
        raise SystemExit(f"the scoring service at {url} does not answer /health ({error}); start it with "
                         "`make run` or `python -m serve.run`, or pass --url") from None
    applicants = replay_applicants(load_settings(params_path).data.synthetic, rows, drift, seed, first_id)
    tally = send_all(url, request_schema.records(applicants), clients, reasons, progress)
    for failure in tally.failures[:5]:
        logger.error("request failed: %s", failure)
    ids = applicants["SK_ID_CURR"]
    return {**tally.summary(), "drift": drift, "first_id": int(ids.min()), "last_id": int(ids.max())}


def write_outcomes(directory: Path, rows: int, drift: bool, seed: int = 7, params_path: Path = Path("params.yaml"),
                   first_id: int = FIRST_REPLAY_ID) -> dict[str, Any]:
    """The repayment outcomes of the applicants `replay` sends with the same arguments (drawn from the generator's
    true probability of default), as the CSV file a lender would drop in `paths.outcomes` months later."""
    applicants = replayed_applicants(load_settings(params_path).data.synthetic, rows, drift, seed, first_id)
    outcomes = draw_outcomes(applicants, seed)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"replay-{first_id}-{first_id + rows - 1}.csv"
    outcomes.to_csv(path, index=False)
    return {"outcomes": str(path), "rows": len(outcomes), "defaults": int(outcomes["TARGET"].sum()), "drift": drift,
            "first_id": first_id, "last_id": first_id + rows - 1}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the scoring service")
    parser.add_argument("--rows", type=int, default=2000, help="applicants to send")
    parser.add_argument("--drift", action=argparse.BooleanOptionalAction, default=True,
                        help="shift them as params.yaml data.synthetic.drift says (default) or not")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--reasons", type=int, help="reasons asked per applicant (default: the service's own)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--first-id", type=int, default=FIRST_REPLAY_ID, help="SK_ID_CURR of the first applicant")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--outcomes", action="store_true",
                        help="send nothing: write the repayment outcomes of the applicants these arguments replay")
    parser.add_argument("--outcomes-dir", type=Path, help="where (default: params.yaml paths.outcomes)")
    ns = parser.parse_args(argv)
    if ns.rows < 1:
        parser.error("--rows must be at least 1")
    if ns.outcomes:
        directory = ns.outcomes_dir or load_settings(ns.params).paths.outcomes
        summary = write_outcomes(directory, ns.rows, ns.drift, ns.seed, ns.params, ns.first_id)
        logger.info("outcomes of %(rows)s replayed applicants (%(defaults)s defaults) written to %(outcomes)s; "
                    "`dvc repro performance` measures them", summary)
        return summary
    summary = replay(ns.url.rstrip("/"), ns.rows, ns.drift, ns.clients, ns.seed, ns.reasons, ns.params,
                     first_id=ns.first_id)
    logger.info("replayed %(scored)s of %(sent)s applicants (drift %(drift)s): %(failed)s failed, refused share "
                "%(refused_share)s, mean probability %(mean_probability)s, p50 %(p50_ms)s ms", summary)
    if summary["failed"]:
        sys.exit(1)
    logger.info("the service logged them; `dvc repro` now runs the drift stage on this traffic")
    return summary


if __name__ == "__main__":
    main()
