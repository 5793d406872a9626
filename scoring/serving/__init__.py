"""Scoring applicants: the one engine (features, model, calibrated probability, decision, reasons), the request schema,
the scoring service's graph and batch scoring."""
