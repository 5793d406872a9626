"""Deliverables read from the pipeline's reports: the presentation deck."""
