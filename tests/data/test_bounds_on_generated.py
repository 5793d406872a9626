"""The generated default data within the contract's plausibility bounds: every table of the generator, and the drifted
applicants that `serve.replay` sends to the service (higher incomes, older birth dates), so `dvc repro` and the
replay keep passing with the bounds."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import contract
from scoring.synthetic import generator
from tools import envelopes

from ..conftest import SMALL


def whole_violations(frame: pd.DataFrame, table: contract.Table) -> list[str]:
    """Whole-number columns holding fractions."""
    out = []
    for col in table.columns:
        values = frame[col.name].dropna() if col.whole else pd.Series(dtype=float)
        if (values != values.round()).any():
            out.append(col.name)
    return out


@pytest.mark.parametrize("table", sorted(contract.TABLES))
def test_generated_tables_lie_within_the_bounds(small_dataset: Path, table: str):
    frame = pd.read_parquet(small_dataset / f"{table}.parquet")
    spec = contract.table(table)
    assert not envelopes.outside(spec, envelopes.envelope(frame, spec))
    assert not whole_violations(frame, spec)


def test_drifted_applicants_lie_within_the_bounds():
    settings = replace(SMALL, drift=replace(SMALL.drift, enabled=True))
    ids = np.arange(100_002, 104_002, dtype=np.int64)
    is_test = np.arange(len(ids)) % 2 == 0
    _, test, _, _ = generator.generate_applications(ids, is_test, np.random.default_rng(3), None, settings)
    spec = contract.table("application_test")
    assert not envelopes.outside(spec, envelopes.envelope(test, spec))
    assert not whole_violations(test, spec)
