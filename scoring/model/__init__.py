"""Fitting, choosing and judging models: candidates and training, business cost, evaluation, explanations, plots, model
card, MLflow tracking and registry."""
