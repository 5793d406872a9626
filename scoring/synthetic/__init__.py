"""The embedded default data: a generator of the seven Home Credit tables in Kaggle's schema."""
