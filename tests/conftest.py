"""Shared fixtures: a small generated data set, one Great Expectations context, the real rows in ../shared."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from scoring.synthetic.dataset import generate_dataset
from scoring.synthetic.generator import GeneratorParams

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HOME_CREDIT_SHARED", REPO.parent / "shared" / "data" / "home-credit"))

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

SMALL = GeneratorParams(n_applicants=6_000, n_test=1_500, seed=7, chunk_size=4_000)


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"real Kaggle rows not available ({path})")
    return path


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven generated tables (6,000 + 1,500 applicants, two chunks) and the oracle, as Parquet."""
    out = tmp_path_factory.mktemp("synthetic") / "tables"
    generate_dataset(SMALL, out, progress=False)
    return out


@pytest.fixture(scope="session")
def validator():
    from scoring.data.validation import ContractValidator

    return ContractValidator()


@pytest.fixture(scope="session")
def real_raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Kaggle-like raw folder made of links to the real rows (the key-coherent subsets)."""
    links = {
        "application_train.csv.gz": "coherent10k/application_train.csv.gz",
        "bureau.csv.gz": "coherent10k/bureau.csv.gz",
        "bureau_balance.csv.gz": "coherent10k/bureau_balance.csv.gz",
        "credit_card_balance.csv.gz": "coherent10k/credit_card_balance.csv.gz",
        "previous_application.csv.gz": "idrange_100002_100999/previous_application.csv.gz",
        "application_test.csv.gz": "application_test.csv.gz",
    }
    raw = tmp_path_factory.mktemp("kaggle_raw")
    for name, relative in links.items():
        (raw / name).symlink_to(shared_file(relative))
    return raw


@pytest.fixture(scope="session")
def real_prepared(real_raw_dir, validator, tmp_path_factory):
    """The real rows through prepare: (result, prepared folder)."""
    from scoring.data.prepare import prepare_tables

    base = tmp_path_factory.mktemp("real_prepared")
    result = prepare_tables(real_raw_dir, base / "prepared", base / "reports", validator)
    return result, base / "prepared"
