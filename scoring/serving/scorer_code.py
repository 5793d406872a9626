"""The code of the registered model, in MLflow's "models from code" form: MLflow copies this file into each model
version and runs it to get the pyfunc (`scoring.serving.registered_model.log_scorer` logs it). Nothing imports it;
it needs this package where the model is loaded, as the fitted model (a pickle of its classes) does."""
import mlflow

from scoring.serving.registered_model import CreditScorer

mlflow.models.set_model(CreditScorer())
