"""The input table as one catalog entry, whatever its format, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset
from kedro_datasets._typing import TablePreview

from model_trainer.table.checks import read_table


class TableDataset(AbstractDataset[None, pd.DataFrame]):
    """Reads CSV or Parquet by the file's suffix (the path is usually a runtime parameter)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        return read_table(self._filepath)

    def save(self, data: None) -> None:
        raise NotImplementedError("TableDataset is read-only: the raw table is the user's file.")

    def preview(self, nrows: int = 5) -> TablePreview:
        """The first rows, in the split layout kedro-viz's table preview reads."""
        return self.load().head(nrows).to_dict(orient="split")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
