"""The registered MLflow model: the whole scorer, as one `mlflow.pyfunc` model.

Raw application rows in (Kaggle's application_test columns, as a lender's system holds them), the scoring engine's
answer out: probability of default, decision at the version's own business threshold, the threshold, and the top
reasons as `reason_<i>_*` columns. The pyfunc carries what the engine needs as artifacts: the fitted model
(`model.joblib`), the threshold stage's `threshold.json` and the history lookup it was trained with
(`history.parquet`), and, with `train.release: all_labelled`, the model fitted without the holdout
(`validated.joblib`, which the champion gate measures), so that

    mlflow.pyfunc.load_model("models:/credit-scoring@champion").predict(applications, params={"reasons": 3})
    mlflow models serve -m models:/credit-scoring@champion --env-manager local --host 127.0.0.1

answer what the service answers. Scoring is the engine's (`scoring.serving.engine`) through batch scoring's
`score_table`; rows that break the data contract are refused with the column and rule, never scored. The model is
logged from code (`scorer_code.py`, MLflow 3's recommended form, no pickled PythonModel). The model layer
cannot import this module (it is serving), so the evaluate stage hands `log_scorer` and `pyfunc_decisions` to
`scoring.model.tracking`. The package itself must be importable where the model is loaded (this environment, the
service's image): the pickled model is made of its classes.
"""
from __future__ import annotations

import json
import logging
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from scoring import contract, features
from scoring.data.row_checks import row_problems
from scoring.serving.batch import score_table
from scoring.serving.engine import ScoringEngine

logger = logging.getLogger(__name__)
TABLE = "application_test"
"""The input's schema: an application without TARGET."""
ARTIFACTS = ("model", "threshold", "history")
VALIDATED = "validated"
"""An optional artifact: the model fitted without the holdout (`train.release: all_labelled`), which the champion gate
scores in place of the served one, fitted on that holdout."""
REQUIREMENTS = ("pandas", "numpy", "pyarrow", "scipy", "scikit-learn", "xgboost-cpu", "lightgbm", "imbalanced-learn",
                "joblib", "numba", "mlflow")
"""What loading the model needs besides this package (pinned at the versions of the environment that logs it)."""
SHOWN_PROBLEMS = 10
CODE = Path(__file__).with_name("scorer_code.py")
"""The model's code file (MLflow's models from code: no pickled Python object in the model)."""


class CreditScorer(mlflow.pyfunc.PythonModel):
    """The pyfunc: its artifacts are loaded once into a scoring engine, `predict` scores raw applications."""

    def load_context(self, context: Any) -> None:
        self.artifacts = {name: Path(path) for name, path in context.artifacts.items()}
        self.engine = engine_from(*(self.artifacts[name] for name in ARTIFACTS))

    def measured_engine(self) -> ScoringEngine:
        """The engine a holdout may fairly measure: the version's `validated` model when it carries one (its served
        model saw the holdout), else its served model (`train.release: training_rows`, or an older version)."""
        if VALIDATED not in self.artifacts:
            return self.engine
        return engine_from(self.artifacts[VALIDATED], self.artifacts["threshold"], self.artifacts["history"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """SK_ID_CURR, probability, decision, threshold and `params["reasons"]` reasons per applicant."""
        reasons = int((params or {}).get("reasons", 0))
        return score_table(self.engine, checked_rows(pd.DataFrame(model_input)), reasons)


def engine_from(model: Path, threshold: Path, history: Path) -> ScoringEngine:
    """A scoring engine from the pipeline's files (or a model version's copies of them)."""
    return ScoringEngine(joblib.load(model), float(json.loads(threshold.read_text())["threshold"]),
                         pd.read_parquet(history))


def checked_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The applications with every contract column (an absent optional one is missing for all), or an error that
    names each broken rule (MLflow's server answers it as a 400)."""
    absent = [c for c in contract.table(TABLE).columns if c.name not in frame.columns]
    if required := [c.name for c in absent if not c.nullable]:
        raise MlflowException(f"missing required column(s) {', '.join(required)}",
                              error_code=INVALID_PARAMETER_VALUE)
    frame = frame.assign(**{c.name: np.nan if c.is_numeric else None for c in absent})
    problems = row_problems(frame, TABLE)
    if len(problems):
        lines = "; ".join(f"row {p.row} ({p.column}): {p.rule}, got {p.value}"
                          for p in problems.head(SHOWN_PROBLEMS).itertuples())
        raise MlflowException(f"{problems['row'].nunique()} row(s) break the data contract: {lines}",
                              error_code=INVALID_PARAMETER_VALUE)
    return frame


def raw_rows(apps: pd.DataFrame) -> pd.DataFrame:
    """Prepared applications as a client sends them: the contract's columns without TARGET, categories as text
    (None when missing)."""
    columns = contract.table(TABLE).names
    out = apps[columns].copy()
    for name in features.CATEGORICAL & set(columns):
        values = out[name].astype("object")
        out[name] = values.where(values.notna(), None)
    return out.reset_index(drop=True)


def mlflow_type(column: contract.Column) -> str:
    if column.kind == "category":
        return "string"
    return "long" if column.kind in ("key", "int", "flag") and not column.nullable else "double"


def signature(example: pd.DataFrame, output: pd.DataFrame, reasons: int) -> ModelSignature:
    """Inputs: the contract's application columns (optional ones may be left out); outputs: the example's answer
    columns; one parameter, the number of reasons."""
    inputs = Schema([ColSpec(mlflow_type(c), c.name, required=not c.nullable)
                     for c in contract.table(TABLE).columns])
    params = ParamSchema([ParamSpec("reasons", "long", reasons)])
    with warnings.catch_warnings():  # MLflow's hint that SK_ID_CURR, an integer, cannot be missing: it cannot
        warnings.simplefilter("ignore", UserWarning)
        outputs = infer_signature(example, output).outputs
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]


def log_scorer(files: dict[str, Path], example: pd.DataFrame, reasons: int, registered_name: str) -> Any:
    """Log the whole scorer in the active MLflow run and register it; `files` maps ARTIFACTS (and optionally
    VALIDATED) to the pipeline's files. Returns MLflow's ModelInfo (`registered_model_version`)."""
    example = raw_rows(example)
    output = score_table(engine_from(*(files[name] for name in ARTIFACTS)), example, reasons)
    carried = {name: str(path) for name, path in files.items() if name in (*ARTIFACTS, VALIDATED)}
    return mlflow.pyfunc.log_model(
        name="model", python_model=str(CODE), artifacts=carried,
        signature=signature(example, output, reasons), input_example=example, registered_model_name=registered_name,
        pip_requirements=requirements())


def pyfunc_decisions(model_uri: str, apps: pd.DataFrame) -> np.ndarray:
    """Each applicant refused (True) or granted by the registered model at `model_uri`, on raw applications: how the
    champion gate compares versions whatever features they were trained on. A version that carries a `validated`
    model is measured by it (CreditScorer.measured_engine): its served model was fitted on this holdout."""
    scorer = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    answers = score_table(scorer.measured_engine(), checked_rows(raw_rows(apps)), 0)
    return answers["decision"].to_numpy() == "refused"
