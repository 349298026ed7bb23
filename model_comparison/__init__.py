"""Baselines against retrieval on the same walk-forward folds and trigger vectors."""
