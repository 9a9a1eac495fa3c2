"""A trained model judged on data given after training, and that data checked against what the
model expects (its card): the evaluate pipeline's metrics, comparisons and error analysis, and
the batch predictions of the inference pipeline.

Errors are those of `training.predictions_table`: |actual - predicted| for regression, one minus
the probability given to the actual class for classification.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import precision_recall_fscore_support

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.evaluation.drift import (
    CATEGORICAL_TYPES,
    NUMERIC_TYPES,
    category_labels,
    frequent_categories,
    load_split,
    numeric_labels,
    quantile_edges,
)
from model_trainer.models.ensemble import predict_output, score_output
from model_trainer.models.metrics import REPORTS, label_codes
from model_trainer.serving.model_store import StoredModel, load_stored_model
from model_trainer.table.checks import READERS, validate_table
from model_trainer.tasks.ranking import rank_within_groups

logger = logging.getLogger(__name__)


def require_data_path(path: str | None, parameter: str, pipeline: str) -> Path:
    """Checked before the catalog reads the file, so the fix names the right parameter."""
    if path is None or not str(path).strip():
        raise ConfigurationError(
            f"No data file given: {parameter} is empty.",
            f"Name a CSV or Parquet file at run time: "
            f'kedro run --pipelines={pipeline} --params="{parameter}=PATH".',
        )
    path = Path(str(path).strip())
    if path.suffix.lower() not in READERS:
        raise DataValidationError(
            f"Cannot read '{path}' ({parameter}): unsupported file type '{path.suffix}'.",
            f"Give a CSV or Parquet file ({', '.join(READERS)}) in {parameter}.",
        )
    if not path.is_file():
        raise DataValidationError(
            f"Data file '{path}' ({parameter}) does not exist.",
            f"Check {parameter}; a relative path starts at the project root.",
        )
    return path


def model_task(card: Mapping[str, Any]) -> dict[str, Any]:
    """The task as metrics.py and ensemble.py take it, from the model card."""
    return {
        "type": card["task"],
        "classes": card.get("classes"),
        "positive_class": card.get("positive_class"),
        **(card.get("ranking") or {}),
    }


def check_model_inputs(table: pd.DataFrame, card: Mapping[str, Any], source: str) -> pd.DataFrame:
    """The model's input columns in its order; a missing column or text where the model was
    trained on numbers is an error that names the columns (the model would fail less clearly)."""
    inputs = card["input_columns"]
    missing = [name for name in inputs if name not in table.columns]
    if missing:
        raise DataValidationError(
            f"{source} lacks the model's input columns {missing}.",
            f"Give a table with every column the model was trained on ({', '.join(inputs)}); "
            "other columns are ignored.",
        )
    features = validate_table(table, None, inputs, source)
    not_numeric = [
        name
        for name, info in card["features"].items()
        if info["type"] in NUMERIC_TYPES
        and not pd.api.types.is_numeric_dtype(features[name])
        and features[name].notna().any()
    ]
    if not_numeric:
        raise DataValidationError(
            f"Columns {not_numeric} of {source} hold text, but the model was trained on numbers "
            "there.",
            "Fix those values: a number, or an empty cell for a missing value.",
        )
    return features


def check_labelled_rows(table: pd.DataFrame, card: Mapping[str, Any], source: str) -> pd.DataFrame:
    """The rows with a target, every column kept (an earlier version may use other columns);
    labels the model cannot predict are an error, since every metric would be wrong."""
    target = card["target"]
    if card["task"] == "clustering":
        raise ConfigurationError(
            "The evaluate pipeline compares predictions with known targets; a clustering "
            "model has none to compare with.",
            "Read the clustering's scores in its train report (silhouette, stability, ARI with "
            "a reference column), and assign new rows with `kedro run --pipelines=inference`.",
        )
    if target not in table.columns:
        raise DataValidationError(
            f"{source} has no target column '{target}', so the model cannot be judged on it.",
            f"Give labelled data with a '{target}' column, or score unlabelled rows with "
            "`kedro run --pipelines=inference`.",
        )
    check_model_inputs(table, card, source)
    labelled = table.loc[table[target].notna()].reset_index(drop=True)
    if len(labelled) < len(table):
        logger.warning("Left out %d rows whose target is missing.", len(table) - len(labelled))
    if labelled.empty:
        raise DataValidationError(
            f"Target column '{target}' is missing in every row of {source}.",
            "Give rows whose target is known.",
        )
    if card["task"] == "classification":
        codes = label_codes(labelled[target], card["classes"])
        unknown = sorted(set(labelled[target][codes < 0].tolist()), key=str)
        if unknown:
            raise DataValidationError(
                f"{source} has target values the model never learned: {unknown[:10]} "
                f"(its classes are {card['classes']}).",
                "Evaluate on rows labelled with the model's classes, or retrain with these.",
            )
        # the model's own labels, whatever this file's encoding ("1" in a text column, a
        # category): predictions are compared with them and sklearn wants one type
        labelled[target] = pd.Series(card["classes"]).to_numpy()[codes]
    elif not pd.api.types.is_numeric_dtype(labelled[target]):
        raise DataValidationError(
            f"Target column '{target}' of {source} is not numeric, but the model is a regression.",
            "Fix the target values, or evaluate a model trained for this target.",
        )
    return labelled


def model_metrics(
    model: Any, X: pd.DataFrame, y: pd.Series, task: Mapping[str, Any]
) -> dict[str, float]:
    """Every metric of the task, from one prediction aligned to the model card's classes (so a
    model, or a dummy, that never saw a class is still scored)."""
    output = predict_output(model, X, task)
    groups = X[task["group_column"]].to_numpy() if task["type"] == "ranking" else None
    return {name: score_output(output, y, name, task, groups) for name in REPORTS[task["type"]]}


def no_skill_metrics(X: pd.DataFrame, y: pd.Series, task: Mapping[str, Any]) -> dict[str, float]:
    """A dummy that knows this data's class shares (or mean) and nothing else: the floor."""
    dummy = (
        DummyClassifier(strategy="prior")
        if task["type"] == "classification"
        else DummyRegressor(strategy="mean")  # ranking: one score for all, a random order
    )
    return model_metrics(dummy.fit(X, y), X, y, task)


def compare_models(
    stored: StoredModel, rows: pd.DataFrame, models_dir: Path, splits_dir: Path, n_earlier: int
) -> dict[str, Any]:
    """The model's metrics on these rows beside a dummy's and its earlier registered versions'
    (the same rows), its own test metrics at training for reference, and how many of these rows
    it was trained on."""
    card, task = stored.card, model_task(stored.card)
    X, y = rows[card["input_columns"]], rows[card["target"]]
    described = describe_model(stored)
    uris, note = [], None
    try:
        registered = registered_as(stored)
        if registered is None:
            note = "the model is not registered in MLflow"
        else:
            described["registered_name"], described["registered_version"] = registered
            uris = earlier_versions(*registered, n_earlier)
            if not uris:
                note = f"{registered[0]} version {registered[1]} is the first registered version"
    except MlflowException as exc:
        note = f"the MLflow registry could not be read: {exc.message}"
    if note:
        logger.info("No earlier version compared: %s.", note)
    overlap, overlap_note = training_overlap(rows, card, splits_dir, stored.save_version)
    return {
        "model": described,
        "metric": card["metric"],
        "metrics": model_metrics(stored.model, X, y, task),
        "dummy": no_skill_metrics(X, y, task),
        "at_training": dict(card.get("test_metrics") or {}),
        "earlier_versions": score_earlier_versions(uris, rows, card, models_dir),
        "earlier_versions_note": note,
        "training_overlap": overlap,
        "training_overlap_note": overlap_note,
    }


def previous_version(
    model_registration: Mapping[str, Any],
    card: Mapping[str, Any],
    test_split: pd.DataFrame,
    models_dir: Path,
    splits_dir: Path,
) -> dict[str, Any]:
    """The version registered before this run's, scored on this run's test split, and the share
    of those rows it was trained on (where its score is optimistic); or why there is none."""
    name = model_registration.get("registered_model_name")
    version = model_registration.get("registered_model_version")
    if card["task"] == "clustering":
        return {"note": "clusterings are compared by their own scores, not on held-out targets"}
    if not name or not version:
        return {"note": "the model is not registered in MLflow"}
    uris = earlier_versions(name, str(version), 1)
    if not uris:
        return {"note": f"{name} version {version} is the first registered version"}
    [scored] = score_earlier_versions(uris, test_split, card, models_dir)
    if "skipped" in scored:
        return {"model": uris[0], "note": scored["skipped"]}
    earlier = load_stored_model(uris[0], models_dir)
    overlap, overlap_note = training_overlap(
        test_split, earlier.card, splits_dir, earlier.save_version
    )
    return {**scored, "trained_on_share": overlap, "note": overlap_note}


def training_overlap(
    rows: pd.DataFrame, card: Mapping[str, Any], splits_dir: Path, save_version: str | None
) -> tuple[float | None, str | None]:
    """The share of these rows (inputs and target alike) that the model was trained on, where
    its metrics are optimistic; None with the reason when its splits are not on this machine."""
    columns = [*card["input_columns"], card["target"]]
    seen, reason = trained_on(rows, card, splits_dir, save_version, columns)
    return (None, reason) if seen is None else (float(seen.mean()), None)


def trained_on(
    rows: pd.DataFrame,
    card: Mapping[str, Any],
    splits_dir: Path,
    save_version: str | None,
    columns: list[str],
) -> tuple[pd.Series | None, str | None]:
    """Per row, whether the model was trained on it (the same values of `columns` in one of its
    splits); None with the reason when its splits are not on this machine."""
    trained, reason = training_rows(card, splits_dir, save_version)
    return (None, reason) if trained is None else (rows_in(rows, trained, columns), None)


def training_rows(
    card: Mapping[str, Any], splits_dir: Path, save_version: str | None
) -> tuple[pd.DataFrame | None, str | None]:
    """The rows the model was fitted on, from the splits saved with it (the test split too when
    it was refit on every row); None with the reason when they are not on this machine."""
    fitted_on = ["train", "validation", *(["test"] if card.get("refit_on_all_rows") else [])]
    splits = []
    for name in fitted_on:
        split, reason = load_split(splits_dir, name, save_version)
        if split is None:
            return None, reason
        splits.append(split)
    return pd.concat(splits, ignore_index=True), None


def rows_in(rows: pd.DataFrame, other: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Per row of `rows`, whether `other` holds a row with the same values of `columns`,
    whatever the dtypes each was read with (an integer column read as floats because of one
    missing value, a category as text)."""
    seen = set(_row_hashes(other, columns))
    return pd.Series(_row_hashes(rows, columns).isin(seen).to_numpy(), index=rows.index)


def _row_hashes(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    normalised = pd.DataFrame(
        {
            column: frame[column].astype("float64")
            if pd.api.types.is_numeric_dtype(frame[column])
            else frame[column].astype("string")
            for column in columns
        }
    )
    return pd.util.hash_pandas_object(normalised, index=False)


def describe_model(stored: StoredModel) -> dict[str, Any]:
    card = stored.card
    return {
        "source": stored.source,
        "target": card["target"],
        "task": card["task"],
        "algorithm": card.get("algorithm"),
        "save_version": stored.save_version,
        "run_id": stored.run_id,
        "registered_name": stored.registered_name,
        "registered_version": stored.registered_version,
    }


def registered_as(stored: StoredModel) -> tuple[str, str] | None:
    """The model's name and version in the MLflow registry. A model loaded from a path is found
    through the run that saved it (Kedro's session id is both the save version and that run's
    `run_id` tag)."""
    if stored.registered_name:
        return stored.registered_name, str(stored.registered_version)
    run_ids = [stored.run_id] if stored.run_id else []
    if not run_ids and stored.save_version:
        runs = mlflow.search_runs(
            search_all_experiments=True,
            filter_string=f"tags.run_id = '{stored.save_version}'",
            output_format="list",
        )
        run_ids = [run.info.run_id for run in runs]
    if not run_ids:
        return None
    client = mlflow.MlflowClient()
    found = [v for r in run_ids for v in client.search_model_versions(f"run_id = '{r}'")]
    if not found:
        return None
    latest = max(found, key=lambda v: int(v.version))
    return latest.name, str(latest.version)


def earlier_versions(name: str, version: str, limit: int) -> list[str]:
    """URIs of the versions registered before this one, newest first."""
    found = mlflow.MlflowClient().search_model_versions(f"name = '{name}'")
    numbers = sorted((int(v.version) for v in found if int(v.version) < int(version)), reverse=True)
    return [f"models:/{name}/{n}" for n in numbers[:limit]]


def score_earlier_versions(
    uris: list[str], rows: pd.DataFrame, card: Mapping[str, Any], models_dir: Path
) -> list[dict[str, Any]]:
    """Each earlier version on the same rows, or why it cannot be compared: an old version that
    fails to load or to predict is reported, not allowed to stop the evaluation of this one."""
    task = model_task(card)
    y = rows[card["target"]]
    results = []
    for uri in uris:
        try:
            earlier = load_stored_model(uri, models_dir)
            reason = incompatibility(earlier.card, card, rows)
            if reason is None:
                X = rows[earlier.card["input_columns"]]
                results.append({"model": uri, "metrics": model_metrics(earlier.model, X, y, task)})
                continue
        except Exception as exc:
            reason = (
                exc.message
                if isinstance(exc, ConfigurationError)
                else f"{type(exc).__name__}: {exc}"
            )
        logger.warning("Not compared with %s: %s.", uri, reason)
        results.append({"model": uri, "skipped": reason})
    return results


def incompatibility(
    earlier: Mapping[str, Any], card: Mapping[str, Any], rows: pd.DataFrame
) -> str | None:
    for key in ("target", "task", "classes"):
        if earlier.get(key) != card.get(key):
            return f"it predicts {key} {earlier.get(key)!r}, this model {card.get(key)!r}"
    missing = [name for name in earlier["input_columns"] if name not in rows.columns]
    if missing:
        return f"it needs columns this data lacks: {missing}"
    return None


def breakdown(predictions: pd.DataFrame, task: Mapping[str, Any], bins: int) -> pd.DataFrame:
    """Per class (precision, recall, f1, mean error), or per range of the target for regression
    (mean absolute error and bias: does the model over- or under-predict there?)."""
    if task["type"] == "classification":
        # as class codes: the labels read back from the card (JSON) and the predictions file
        # may differ in type from the model's (an object array of ints, a category)
        classes = list(task["classes"])
        codes = list(range(len(classes)))
        actual = label_codes(predictions["actual"], classes)
        predicted = label_codes(predictions["predicted"], classes)
        precision, recall, f1, support = precision_recall_fscore_support(
            actual, predicted, labels=codes, zero_division=0
        )
        mean_error = predictions["error"].groupby(actual).mean()
        return pd.DataFrame(
            {
                "class": [str(c) for c in classes],
                "rows": support,
                "predicted_rows": [int((predicted == code).sum()) for code in codes],
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "mean_error": [float(mean_error.get(code, np.nan)) for code in codes],
            }
        )
    if task["type"] == "ranking":  # per relevance level: how far from their place its rows are
        table = predictions.groupby("actual")["error"].agg(rows="size", mean_misplacement="mean")
        return table.reset_index().rename(columns={"actual": "relevance"})
    segments = numeric_labels(predictions["actual"], quantile_edges(predictions["actual"], bins))
    signed = predictions["predicted"] - predictions["actual"]
    grouped = pd.DataFrame({"segment": segments, "error": predictions["error"], "bias": signed})
    table = grouped.groupby("segment", sort=False).agg(
        rows=("error", "size"), mae=("error", "mean"), bias=("bias", "mean")
    )
    order = predictions["actual"].groupby(segments).min().sort_values().index
    return table.loc[order].reset_index().rename(columns={"segment": "actual_range"})


def error_patterns(
    predictions: pd.DataFrame, features: Mapping[str, Mapping[str, Any]], settings: Mapping
) -> pd.DataFrame:
    """Per feature, its segments (quantile bins of a number, frequent categories, missing) with
    their mean error against the overall mean: `lift` > 1 is where the model errs more. Segments
    under `min_rows` rows are left out (noise); the highest lift first."""
    overall = float(predictions["error"].mean())
    found = []
    for name, info in features.items():
        if name not in predictions or info["type"] not in (*NUMERIC_TYPES, *CATEGORICAL_TYPES):
            continue
        values = predictions[name]
        if info["type"] in NUMERIC_TYPES:
            segments = numeric_labels(values, quantile_edges(values, int(settings["bins"])))
        else:
            kept = frequent_categories(values, int(settings["max_categories"]))
            segments = category_labels(values, kept)
        grouped = predictions["error"].groupby(segments).agg(["size", "mean"])
        for segment, (size, mean) in grouped.iterrows():
            if size >= int(settings["min_rows"]):
                found.append(
                    {
                        "feature": name,
                        "segment": segment,
                        "rows": int(size),
                        "mean_error": float(mean),
                        "lift": float(mean) / overall if overall else np.nan,
                    }
                )
    columns = ["feature", "segment", "rows", "mean_error", "lift"]
    table = pd.DataFrame(found, columns=columns)
    return table.sort_values("lift", ascending=False, ignore_index=True)


def predict_rows(
    model: Any,
    features: pd.DataFrame,
    task: Mapping[str, Any],
    keys: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Batch predictions: the row number in the input file and its key columns, the prediction,
    and the probability of every class for classifiers."""
    table = pd.DataFrame({"row": np.arange(len(features))})
    if keys is not None:
        table = pd.concat([table, keys.reset_index(drop=True)], axis=1)
    if task["type"] == "clustering":
        table["predicted"] = model.predict(features)  # the cluster; -1 = noise
        return table
    output = predict_output(model, features, task)
    if task["type"] == "ranking":
        table["predicted"] = output  # the score: higher ranks first within a group
        group = task["group_column"]
        if group in features:
            table[group] = features[group].to_numpy()
            table["rank"] = rank_within_groups(output, features[group])
        return table
    if task["type"] == "regression":
        table["predicted"] = output
        return table
    classes = list(task["classes"])
    table["predicted"] = np.asarray(classes, dtype=object)[output.argmax(axis=1)]
    for index, label in enumerate(classes):
        table[f"proba_{label}"] = output[:, index]
    return table


def key_columns(
    table: pd.DataFrame, card: Mapping[str, Any], declared: list[str] | None
) -> list[str]:
    """The columns that identify a row: those declared, else the ones the model ignored as
    id-like; any that the table lacks is an error when declared, left out otherwise."""
    if declared:
        missing = [name for name in declared if name not in table.columns]
        if missing:
            raise DataValidationError(
                f"Key columns {missing} (inference.key_columns) are not in the data.",
                "Name columns of the scored file in inference.key_columns, or leave it empty.",
            )
        return list(declared)
    ignored = card.get("ignored_columns") or {}
    return [
        name
        for name, reason in ignored.items()
        if str(reason).startswith("id-like") and name in table.columns
    ]


def prediction_summary(predictions: pd.DataFrame, task: Mapping[str, Any]) -> dict[str, float]:
    """What a batch was predicted to be: the share of each class, or the spread of values."""
    predicted = predictions["predicted"]
    if task["type"] in ("regression", "ranking"):
        return {
            "predicted_mean": float(predicted.mean()),
            "predicted_std": float(predicted.std()),
            "predicted_min": float(predicted.min()),
            "predicted_max": float(predicted.max()),
        }
    shares = predicted.value_counts(normalize=True)
    labels = sorted(shares.index) if task["type"] == "clustering" else task["classes"]
    return {f"predicted_share_{c}": float(shares.get(c, 0.0)) for c in labels}
