"""A model on held-out or new rows: scores, comparisons, error analysis, drift."""
