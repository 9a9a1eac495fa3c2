"""MLflow beyond kedro-mlflow: the logged model, the registry, failed runs."""
