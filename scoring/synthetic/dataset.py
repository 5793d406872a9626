"""Write a complete synthetic Home Credit data set (seven tables + the oracle) chunk by chunk."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from scoring import contract
from scoring.data.io import ChunkedParquetWriter, replaced_directory
from scoring.settings import Paths, SyntheticSettings
from scoring.synthetic import generator
from scoring.synthetic.histories import IdCounter, generate_histories

logger = logging.getLogger(__name__)
FIRST_SK_ID_CURR = 100_002


def split_ids(p: SyntheticSettings, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive SK_ID_CURR with test applicants scattered among them, as in Kaggle."""
    total = p.n_applicants + p.n_test
    is_test = np.zeros(total, dtype=bool)
    is_test[rng.choice(total, p.n_test, replace=False)] = True
    return FIRST_SK_ID_CURR + np.arange(total, dtype=np.int64), is_test


def generate_dataset(p: SyntheticSettings, out_dir: Path, progress: bool = True) -> dict[str, int]:
    """Generate every table into `out_dir` (replaced atomically); returns the row count of each table."""
    rng = np.random.default_rng(p.seed)
    ids, is_test = split_ids(p, rng)
    chunk_seeds = np.random.SeedSequence(p.seed).spawn((len(ids) + p.chunk_size - 1) // p.chunk_size)
    rows = dict.fromkeys(("application_train", "application_test", *contract.HISTORY_TABLES), 0)
    with replaced_directory(out_dir) as staging:
        writers = {name: ChunkedParquetWriter(staging / f"{name}.parquet", name) for name in rows}
        oracle: list[pd.DataFrame] = []
        alpha = None
        bar = tqdm(total=len(ids), unit="applicant", desc="generate", disable=not progress)
        for index, seed in enumerate(chunk_seeds):
            chunk = slice(index * p.chunk_size, (index + 1) * p.chunk_size)
            chunk_rng = np.random.default_rng(seed)
            train, test, latent, alpha = generator.generate_applications(
                ids[chunk], is_test[chunk], chunk_rng, alpha, p)
            tables = {"application_train": train, "application_test": test}
            ids_counter = IdCounter(5_000_000 + chunk.start * 60, 1_000_000 + chunk.start * 60)
            tables.update(generate_histories(ids[chunk], latent.r_hist, chunk_rng, ids_counter))
            for name, frame in tables.items():
                writers[name].write(frame.drop(columns="TRUE_PD", errors="ignore"))
                rows[name] += len(frame)
            oracle += [train[["SK_ID_CURR", "TRUE_PD"]].assign(split="train"),
                       test[["SK_ID_CURR", "TRUE_PD"]].assign(split="test")]
            bar.update(len(ids[chunk]))
        bar.close()
        for writer in writers.values():
            writer.close()
        pd.concat(oracle, ignore_index=True).to_parquet(staging / Paths.ORACLE, index=False)
    logger.info("generated %s into %s (intercept %.3f)", rows, out_dir, alpha)
    return rows
