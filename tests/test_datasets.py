"""The project's Kedro datasets: a folder of PNG figures, and the raw table in CSV or Parquet."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from model_trainer.datasets import FigureDataset, TableDataset
from model_trainer.errors import DataValidationError, find_model_trainer_error

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def figure(title: str):
    drawn, axes = plt.subplots(figsize=(2, 2))
    axes.plot([0, 1, 2], [2, 0, 1])
    axes.set_title(title)
    return drawn


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- FigureDataset ------------------------------------------------------------------------------


def test_figures_are_saved_as_one_png_each(tmp_path):
    folder = tmp_path / "plots"  # created on save
    dataset = FigureDataset(str(folder), dpi=30)
    assert not dataset.exists()
    dataset.save({"roc_curve.png": figure("roc"), "confusion_matrix.png": figure("cm")})
    assert dataset.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["confusion_matrix.png", "roc_curve.png"]
    for path in folder.iterdir():
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_saving_closes_the_figures(tmp_path):
    drawn = figure("roc")
    FigureDataset(str(tmp_path), dpi=30).save({"roc_curve.png": drawn})
    assert not plt.fignum_exists(drawn.number)


def test_saving_removes_the_pngs_of_an_earlier_save_but_nothing_else(tmp_path):
    dataset = FigureDataset(str(tmp_path), dpi=30)
    dataset.save({"roc_curve.png": figure("roc"), "pr_curve.png": figure("pr")})
    (tmp_path / "notes.txt").write_text("kept")
    dataset.save({"residuals.png": figure("residuals")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "residuals.png"]


def test_loading_gives_the_png_bytes_by_name(tmp_path):
    dataset = FigureDataset(str(tmp_path), dpi=30)
    dataset.save({"b.png": figure("b"), "a.png": figure("a")})
    loaded = dataset.load()
    assert list(loaded) == ["a.png", "b.png"]
    for name, data in loaded.items():
        assert data == (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
    assert loaded["a.png"] != loaded["b.png"]


def test_the_preview_is_the_first_png_in_base64(tmp_path):
    dataset = FigureDataset(str(tmp_path), dpi=30)
    assert dataset.preview() is None
    dataset.save({"b.png": figure("b"), "a.png": figure("a")})
    preview = dataset.preview()
    assert base64.b64decode(preview) == (tmp_path / "a.png").read_bytes()


def test_the_dpi_sets_the_resolution(tmp_path):
    low, high = FigureDataset(str(tmp_path / "low"), dpi=20), FigureDataset(str(tmp_path / "high"))
    low.save({"a.png": figure("a")})
    high.save({"a.png": figure("a")})
    assert len(low.load()["a.png"]) < len(high.load()["a.png"])


# --- TableDataset -------------------------------------------------------------------------------


def test_a_csv_table_is_read_as_is():
    loaded = TableDataset(str(CREDIT)).load()
    pd.testing.assert_frame_equal(loaded, pd.read_csv(CREDIT))
    assert loaded.shape == (3563, 14)


@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".PARQUET"])
def test_a_parquet_table_is_read_by_its_suffix(tmp_path, suffix):
    expected = pd.read_csv(CREDIT).head(200)
    path = tmp_path / f"credit{suffix}"
    expected.to_parquet(path)
    pd.testing.assert_frame_equal(TableDataset(str(path)).load(), expected)


def test_the_table_dataset_works_from_a_catalog_entry(tmp_path):
    catalog = DataCatalog.from_config(
        {"raw_table": {"type": "model_trainer.datasets.TableDataset", "filepath": str(CREDIT)}}
    )
    assert catalog.load("raw_table").columns[0] == "Status"


def test_a_missing_file_is_a_data_error_naming_it(tmp_path):
    missing = tmp_path / "no_such_table.csv"
    dataset = TableDataset(str(missing))
    assert not dataset.exists()
    with pytest.raises(DatasetError) as caught:
        dataset.load()
    error = find_model_trainer_error(caught.value)
    assert isinstance(error, DataValidationError)
    assert str(missing) in error.message
    assert "does not exist" in error.message
    assert "dataset.path" in error.remediation


def test_an_unsupported_file_type_is_a_data_error_listing_the_supported_ones(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"not a spreadsheet")
    with pytest.raises(DatasetError) as caught:
        TableDataset(str(path)).load()
    error = find_model_trainer_error(caught.value)
    assert isinstance(error, DataValidationError)
    assert "'.xlsx'" in error.message
    assert ".csv" in error.remediation and ".parquet" in error.remediation


def test_the_raw_table_is_read_only(tmp_path):
    path = tmp_path / "credit.csv"
    path.write_text(CREDIT.read_text())
    with pytest.raises(DatasetError, match="read-only"):
        TableDataset(str(path)).save(pd.DataFrame({"a": [1]}))
    assert path.read_text() == CREDIT.read_text()
