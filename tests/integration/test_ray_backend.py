"""The pipeline's `ray` backend (params.yaml `compute`), on a single-node Ray started for the stage and on a real
two-node cluster on 127.0.0.1 (`ray start`, token authentication on): prepare's block-by-block validation reports and
writes what the local prepare does; featurize's history aggregates equal the local ones; train's XGBoost refitted on
Ray Train scores like the local fit; nothing of Ray is left running afterwards."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import pandas as pd
import psutil
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from scoring import features
from scoring.data.prepare import ValidationFailed, prepare_tables
from scoring.model import training
from scoring.ray_runtime import AUTH_MODE, TOKEN_PATH, ensure_token
from serve import cluster

from ..conftest import train_settings
from .test_prepare import BAD_INPUTS, corrupt_csv, write_raw

pytestmark = pytest.mark.integration
RAY_HISTORY = """
import sys
from pathlib import Path
from scoring.data.distributed import history_lookup
from scoring.settings import ComputeSettings, configure_logging
configure_logging()
compute = ComputeSettings(backend="ray", address=sys.argv[3], buckets=int(sys.argv[4]), scratch=sys.argv[5],
                          train_workers=2, train_sample=0)
history_lookup(Path(sys.argv[1]), compute).to_parquet(sys.argv[2])
"""


def processes_with_token(token: Path) -> list[psutil.Process]:
    """Every live process whose environment names this token file: what the Ray run started."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TOKEN_PATH) == str(token):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def ray_history(prepared: Path, out: Path, token: Path, address: str = "", buckets: int = 7,
                scratch: Path | None = None) -> subprocess.CompletedProcess:
    """`history_lookup` with the ray backend, in a process of its own (Ray reads its authentication mode on import)."""
    env = {**os.environ, AUTH_MODE: "token", TOKEN_PATH: str(ensure_token(token))}
    return subprocess.run([sys.executable, "-c", RAY_HISTORY, str(prepared), str(out), address, str(buckets),
                           str(scratch or "")], env=env, capture_output=True, text=True, timeout=600)


def test_a_single_node_ray_computes_the_local_history_features_and_stops(small_dataset, small_data, tmp_path):
    token = tmp_path / "token"
    scratch = tmp_path / "scratch"
    done = ray_history(small_dataset, tmp_path / "history.parquet", token, scratch=scratch)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "history aggregates of 7/7 buckets" in done.stderr
    computed = pd.read_parquet(tmp_path / "history.parquet")
    local = small_data.history.sort_index()
    assert list(computed.columns) == list(local.columns)
    pd.testing.assert_frame_equal(computed, local, check_exact=False, rtol=1e-12)
    assert not processes_with_token(token), "Ray processes were left running"
    assert not list(scratch.iterdir()), "the bucket files were left behind"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """Head and worker started with `ray start` on 127.0.0.1 (serve/cluster.py's nodes, token in the run folder):
    (the head's address, the token); stopped afterwards, every process of theirs gone."""
    run_dir = tmp_path_factory.mktemp("cluster")
    token = run_dir / "ray_auth_token"
    state = cluster.ClusterState("", 0, fast_ingress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_PATH, str(ensure_token(token)))  # the nodes' token (start_nodes passes the environment)
        patch.setenv(AUTH_MODE, "token")
        try:
            cluster.start_nodes(state, run_dir)
            assert len(cluster.cluster_processes(state)) > 2
            yield state.gcs_address, token
        finally:
            cluster.down(run_dir, state)
    assert not cluster.cluster_processes(state)
    assert not processes_with_token(token)


def test_a_two_node_cluster_computes_the_local_history_features(small_dataset, small_data, tmp_path, two_nodes):
    """The stage's driver connects to the cluster by address; a driver with another token is refused."""
    address, token = two_nodes
    done = ray_history(small_dataset, tmp_path / "history.parquet", token, address=address, buckets=6,
                       scratch=tmp_path / "scratch")
    assert done.returncode == 0, done.stderr[-3000:]
    computed = pd.read_parquet(tmp_path / "history.parquet")
    pd.testing.assert_frame_equal(computed, small_data.history.sort_index(), check_exact=False, rtol=1e-12)
    refused = ray_history(small_dataset, tmp_path / "other.parquet", tmp_path / "another_token", address=address)
    assert refused.returncode != 0 and "Authentication" in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "other.parquet").exists()


RAY_PREPARE = """
import sys
from pathlib import Path
from scoring import ray_runtime
from scoring.data.prepare import ValidationFailed, checked_tables
from scoring.data.ray_prepare import BlockChecker
from scoring.settings import configure_logging
configure_logging()
source, out, address, scratch = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
with ray_runtime.session(address):
    try:
        checked_tables(source, out / "prepared", out / "reports", BlockChecker(scratch, block_rows=150))
    except ValidationFailed as failure:
        print(failure, file=sys.stderr)
        sys.exit(1)
"""


def ray_prepare(source: Path, out: Path, token: Path, address: str = "", scratch: Path | None = None
                ) -> subprocess.CompletedProcess:
    """prepare's tables validated on Ray, 150 rows a block (CSV; a Parquet file's blocks are whole row groups), in a
    process of its own."""
    env = {**os.environ, AUTH_MODE: "token", TOKEN_PATH: str(ensure_token(token))}
    return subprocess.run([sys.executable, "-c", RAY_PREPARE, str(source), str(out), address, str(scratch or "")],
                          env=env, capture_output=True, text=True, timeout=600)


def report_of(out: Path) -> dict:
    return json.loads((out / "reports" / "validation.json").read_text())


def test_prepare_on_a_two_node_cluster_writes_the_local_tables(small_dataset, tmp_path, validator, two_nodes):
    """The generator's eight Parquet tables, each task reading its own row groups (two chunks: two blocks of
    applications), on either node: the prepared tables and the report equal the local prepare's."""
    here = prepare_tables(small_dataset, tmp_path / "local" / "prepared", tmp_path / "local" / "reports", validator)
    address, token = two_nodes
    done = ray_prepare(small_dataset, tmp_path / "ray", token, address, tmp_path / "scratch")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ray: application_train validated, 2 blocks, 6000 rows" in done.stderr
    assert len(here.reports) == 8
    for report in here.reports:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / "prepared" / f"{report.table}.parquet"),
                                      pd.read_parquet(tmp_path / "local" / "prepared" / f"{report.table}.parquet"))
    assert report_of(tmp_path / "ray") == report_of(tmp_path / "local")
    assert not list((tmp_path / "scratch").iterdir()), "the blocks' files were left behind"


def findings_of(out: Path) -> list[tuple]:
    return sorted((f["table"], f["column"], f["rule"], f["failing"], f["rows"], tuple(map(str, f["examples"])))
                  for table in report_of(out)["tables"] for f in table["findings"])


def test_prepare_on_ray_reports_every_broken_rule_as_the_local_prepare(small_dataset, tmp_path, validator):
    """Every corruption of test_prepare's BAD_INPUTS, plus a key repeated in two blocks (which no block can see):
    the same failed rules with the same counts and examples, the same one-line errors, and nothing written."""
    raw = write_raw(small_dataset, tmp_path / "raw")
    for table, change, _ in BAD_INPUTS.values():
        corrupt_csv(raw, table, change)

    def repeat_in_a_later_block(frame: pd.DataFrame) -> None:
        frame.loc[350, "SK_ID_CURR"] = frame.loc[1, "SK_ID_CURR"]

    corrupt_csv(raw, "application_train", repeat_in_a_later_block)
    with pytest.raises(ValidationFailed) as failure:
        prepare_tables(raw, tmp_path / "local" / "prepared", tmp_path / "local" / "reports", validator)
    token = tmp_path / "token"
    done = ray_prepare(raw, tmp_path / "ray", token, scratch=tmp_path / "scratch")
    assert done.returncode == 1, done.stderr[-3000:]
    assert findings_of(tmp_path / "ray") == findings_of(tmp_path / "local")
    repeated = [f for f in findings_of(tmp_path / "ray") if f[2] == "key must be unique"]
    assert [f[3] for f in repeated] == [4], repeated  # rows 0 and 5 (one block), 1 and 350 (two blocks)
    for line in str(failure.value).splitlines()[1:-1]:
        assert line in done.stderr
    assert not list((tmp_path / "ray" / "prepared").glob("*.parquet")), "a failed prepare wrote tables"
    assert not processes_with_token(token), "Ray processes were left running"


RAY_REFIT = """
import sys
import joblib
import pandas as pd
from pathlib import Path
from scoring.model import ray_xgboost
from scoring.settings import ComputeSettings, configure_logging
configure_logging()
pipeline = joblib.load(sys.argv[1])
files = [Path(name) for name in sys.argv[2].split(",")]
fit = pd.concat([pd.read_parquet(file) for file in files])
compute = ComputeSettings(backend="ray", address=sys.argv[5], buckets=4, scratch=sys.argv[4], train_workers=2,
                          train_sample=0)
fitted = ray_xgboost.refit(pipeline, fit.drop(columns="TARGET"), fit["TARGET"].to_numpy(), files, compute)
joblib.dump(fitted, sys.argv[3])
"""


def test_xgboost_refitted_on_ray_train_scores_like_the_local_fit(small_data, tmp_path, two_nodes):
    """The chosen XGBoost refitted data-parallel on two Ray Train workers of the two-node cluster (each reading its
    shard through Ray Data): the same pipeline steps, the same tree count, a holdout AUC within 0.005 of the same
    model fitted here (on the default data: 0.7575 both); Ray Train's storage gone afterwards."""
    y = small_data.y
    fit, holdout = features.split_holdout(small_data.X, small_data.tables["application_train"]
                                          .set_index("SK_ID_CURR").TARGET, 0.25, 0)
    X_fit = fit.drop(columns="TARGET")
    pipeline = training.build_pipeline("xgboost", *training.split_columns(X_fit), train_settings(), float(y.mean()))
    pipeline.set_params(model__rounds=120, model__max_depth=3, model__learning_rate=0.05)
    half = len(fit) // 2   # two files, as the release refit reads the training rows and the holdout
    parts = [tmp_path / "fit_1.parquet", tmp_path / "fit_2.parquet"]
    fit.iloc[:half].to_parquet(parts[0])
    fit.iloc[half:].to_parquet(parts[1])
    joblib.dump(pipeline, tmp_path / "pipeline.joblib")
    (address, token), scratch = two_nodes, tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, AUTH_MODE: "token", TOKEN_PATH: str(token)}
    done = subprocess.run([sys.executable, "-c", RAY_REFIT, str(tmp_path / "pipeline.joblib"),
                           ",".join(map(str, parts)), str(tmp_path / "fitted.joblib"), str(scratch), address],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "XGBoost on 2 workers, 132 rounds" in done.stderr
    on_ray = joblib.load(tmp_path / "fitted.joblib")
    here = clone(pipeline).fit(X_fit, fit["TARGET"].to_numpy())
    assert list(on_ray.named_steps) == list(here.named_steps) == ["prep", "model"]
    assert on_ray.named_steps["model"].get_booster().num_boosted_rounds() == 132
    X_holdout = holdout.drop(columns="TARGET")
    auc_ray = roc_auc_score(holdout["TARGET"], on_ray.predict_proba(X_holdout)[:, 1])
    auc_here = roc_auc_score(holdout["TARGET"], here.predict_proba(X_holdout)[:, 1])
    print(f"holdout AUC: Ray Train {auc_ray:.4f}, here {auc_here:.4f}")
    assert abs(auc_ray - auc_here) < 0.005
    assert not list(scratch.iterdir()), "Ray Train's storage was left behind"
