"""A folder of PNG plots: saved from matplotlib figures, loaded back as PNG bytes, so a later
node (the HTML report) or a later run can embed them, and kedro-viz can preview them."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Protocol

from kedro.io import AbstractDataset, DatasetError
from kedro_datasets._typing import ImagePreview


class SavableFigure(Protocol):
    """What FigureDataset saves: a matplotlib Figure. A protocol, so the nodes that return
    figures name their type without importing matplotlib (0.3 s) when the pipelines are built,
    and Kedro, which reads every node's type hints at start-up, resolves it."""

    def savefig(self, fname: Any, **kwargs: Any) -> Any: ...


class FigureDataset(AbstractDataset[dict[str, SavableFigure], dict[str, bytes]]):
    def __init__(
        self, filepath: str, dpi: int = 90, metadata: dict[str, Any] | None = None
    ) -> None:
        self._filepath = Path(filepath)
        self._dpi = dpi
        self.metadata = metadata

    def save(self, data: dict[str, SavableFigure]) -> None:
        import matplotlib.pyplot as plt  # loaded with the figures; not at catalog creation

        self._filepath.mkdir(parents=True, exist_ok=True)
        for stale in self._filepath.glob("*.png"):
            stale.unlink()
        for name, figure in data.items():
            figure.savefig(
                self._filepath / name,
                format="png",
                dpi=self._dpi,
                # zlib's fastest level: 13% less time than the default, files within 15%. No
                # bbox_inches="tight": every figure is laid out tight when drawn by the project,
                # and cropping it again drew it twice (14% of the save time).
                pil_kwargs={"compress_level": 1},
            )
            plt.close(figure)

    def load(self) -> dict[str, bytes]:
        if not self._filepath.is_dir():
            raise DatasetError(
                f"No plots at '{self._filepath}': run the node that draws them first."
            )
        return {path.name: path.read_bytes() for path in sorted(self._filepath.glob("*.png"))}

    def preview(self) -> ImagePreview:
        """The first plot, base64-encoded, as kedro-viz's ImagePreview expects; None before the
        first save. kedro-viz picks the viewer by the annotation's name, so it is ImagePreview
        alone (`ImagePreview | None` would show no image)."""
        first = next(iter(sorted(self._filepath.glob("*.png"))), None)
        return ImagePreview(base64.b64encode(first.read_bytes()).decode()) if first else None

    def _exists(self) -> bool:
        return self._filepath.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "dpi": self._dpi}
