"""model.joblib as the train pipeline digests it."""

from __future__ import annotations

from typing import Any

from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.pickle import PickleDataset


class ModelFileDataset(PickleDataset):
    """Saved from the joblib bytes whose SHA-256 the model card records (written verbatim, so
    the file is exactly what was digested), loaded back as the fitted model with joblib."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"backend": "joblib", **kwargs})

    def save(self, data: bytes) -> None:
        if not isinstance(data, bytes):
            raise DatasetError(
                f"ModelFileDataset saves a model's joblib bytes, not a {type(data).__name__}: "
                "serialise it with model_trainer.serving.integrity.joblib_file first."
            )
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        with self._fs.open(save_path, **self._fs_open_args_save) as handle:
            handle.write(data)
        self._invalidate_cache()
