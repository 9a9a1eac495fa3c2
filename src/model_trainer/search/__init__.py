"""The hyperparameter search: the Optuna study (`tuning`) over the families' space (`space`),
sampled and pruned (`samplers`) within its share of the time budget (`budget`), stored
(`storage`), logged and summarized (`trial_records`), and turned into the final model's
ensemble, bag and calibration (`final_model`); the smoke run and stored predictions."""
