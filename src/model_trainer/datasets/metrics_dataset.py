"""kedro-mlflow's metrics dataset, with a save's metrics logged in one batch."""

from __future__ import annotations

import time
from itertools import chain

from kedro.io import DatasetError
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from mlflow import MlflowClient
from mlflow.entities import Metric

from model_trainer.tracking.runs import MLFLOW_BATCH_METRICS


class MlflowMetricsBatchDataset(MlflowMetricsHistoryDataset):
    """Saves as kedro-mlflow's MlflowMetricsHistoryDataset does, but in one log_batch call (one
    SQLite transaction) per 1000 metrics instead of one log_metric call per metric, each a
    transaction of its own. Without a run to log to, it falls back to the parent, which starts
    one as MLflow does."""

    def _save(self, data: dict) -> None:
        if not self._logging_activated:
            return
        try:
            run_id = self.run_id
        except DatasetError:
            super()._save(data)
            return
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for key, value, step in chain.from_iterable(
                self._build_args_list_from_metric_item(name, item) for name, item in data.items()
            )
        ]
        client = MlflowClient()
        for start in range(0, len(metrics), MLFLOW_BATCH_METRICS):
            client.log_batch(run_id, metrics=metrics[start : start + MLFLOW_BATCH_METRICS])
