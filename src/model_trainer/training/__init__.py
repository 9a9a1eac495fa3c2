"""The final fits: early stopping, thresholds, baselines, checkpoints."""
