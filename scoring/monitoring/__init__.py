"""Watching what is scored: the production log (writer and reader), drift against the training applicants."""
