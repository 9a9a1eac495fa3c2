"""The hyperparameter search: the Optuna study, the smoke run, stored predictions."""
