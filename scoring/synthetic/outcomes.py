"""New applicants for the running service, and their repayment outcomes months later.

`serve.replay` sends `replayed_applicants` to the scoring service (shifted by `data.synthetic.drift` by default); the
generator knows each one's true probability of default (TRUE_PD), so `draw_outcomes` can say, later, which of them
defaulted: the same settings, seed, count and first SK_ID_CURR give the same applicants, hence the same TRUE_PD.
The drift moves what the applicants look like (income, age, EXT_SOURCE, organisation) after their TRUE_PD is drawn,
as for the generator's drifted application_test: a model trained before the shift misjudges them.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from scoring.settings import SyntheticSettings
from scoring.synthetic import generator

FIRST_REPLAY_ID = 2_000_001
"""SK_ID_CURR of replayed applicants: above the generator's and Kaggle's ranges, so none has a credit history."""
OUTCOME_STREAM = 1
"""Mixed with the replay's seed: the outcomes' random stream is not the applicants'."""
KEY, TARGET = "SK_ID_CURR", "TARGET"


def replayed_applicants(settings: SyntheticSettings, rows: int, drift: bool, seed: int,
                        first_id: int = FIRST_REPLAY_ID) -> pd.DataFrame:
    """`rows` new applicants in Kaggle's application_test schema plus TRUE_PD, from the generator as `settings` say
    (with its drift on or off). The same arguments give the same applicants."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    settings = dataclasses.replace(settings, seed=seed,
                                   drift=dataclasses.replace(settings.drift, enabled=drift))
    ids = first_id + np.arange(rows, dtype=np.int64)
    _, test, _, _ = generator.generate_applications(ids, np.ones(rows, dtype=bool), np.random.default_rng(seed), None,
                                                    settings)
    return test


def draw_outcomes(applicants: pd.DataFrame, seed: int) -> pd.DataFrame:
    """SK_ID_CURR and TARGET (1: defaulted), each drawn from the applicant's TRUE_PD with its own seeded stream."""
    true_pd = applicants["TRUE_PD"].to_numpy(dtype="float64")
    draws = np.random.default_rng([seed, OUTCOME_STREAM]).random(len(true_pd))
    return pd.DataFrame({KEY: applicants[KEY].to_numpy(dtype="int64"), TARGET: (draws < true_pd).astype("int8")})
