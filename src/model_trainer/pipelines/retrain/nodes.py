"""The serving model and new labelled rows -> a challenger with its configuration, both judged
on the same held-out new rows, the challenger promoted only when it wins by the margin."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException

from model_trainer.evaluation import holdout as evaluation
from model_trainer.evaluation.compare import registered_as
from model_trainer.reporting.pages import render_retrain_html
from model_trainer.serving.integrity import joblib_file
from model_trainer.serving.model_store import StoredModel, load_stored_model
from model_trainer.tracking.runs import log_retraining
from model_trainer.training import retraining

logger = logging.getLogger(__name__)


def load_champion(settings: dict[str, Any]) -> StoredModel:
    """Runs first, so a missing data path is reported (naming retrain.data) before the catalog
    tries to read it."""
    evaluation.require_data_path(settings.get("data"), "retrain.data", "retrain")
    champion = load_stored_model(
        settings.get("champion"),
        Path(settings["models_dir"]),
        trust_unverified=bool(settings.get("trust_unverified", False)),
    )
    retraining.retrainable_task(champion.card)
    logger.info("Champion: %s; new data: %s.", champion.source, settings["data"])
    return champion


def check_new_rows(
    champion: StoredModel, retrain_table: pd.DataFrame, settings: dict[str, Any]
) -> pd.DataFrame:
    """The labelled rows with the champion's input columns and target (and retrain.time_column)."""
    card = champion.card
    rows = evaluation.check_labelled_rows(retrain_table, card, f"the new data '{settings['data']}'")
    kept = [*card["input_columns"], card["target"]]
    time_column = settings.get("time_column")
    if time_column in rows.columns and time_column not in kept:
        kept.append(time_column)  # the split orders by it; the model never reads it
    return rows[kept].reset_index(drop=True)


def split_new_rows(
    retrain_rows: pd.DataFrame, champion: StoredModel, settings: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return retraining.split_new_rows(retrain_rows, champion.card, settings)


def gather_challenger_rows(
    champion: StoredModel, retrain_train_split: pd.DataFrame, settings: dict[str, Any]
) -> pd.DataFrame:
    """The new train rows, and with retrain.add_champion_rows the rows the champion was
    trained on (from its saved splits)."""
    rows = [retrain_train_split]
    if settings.get("add_champion_rows"):
        rows.append(retraining.champion_rows(champion, Path(settings["splits_dir"])))
    return pd.concat(rows, ignore_index=True)


def fit_challenger(
    champion: StoredModel,
    challenger_train_rows: pd.DataFrame,
    retrain_validation_split: pd.DataFrame,
    settings: dict[str, Any],
    tuning: dict[str, Any],
    training: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """Fitted without the new test rows, as the train pipeline fits the model its test split
    judges: the champion's configuration, or with retrain.search a fresh search's choice (its
    trials nested in this MLflow run). The model, and how it was configured."""
    if settings.get("search"):
        import mlflow

        return retraining.search_challenger(
            champion,
            challenger_train_rows,
            retrain_validation_split,
            tuning,
            training,
            mlflow.active_run(),
        )
    rows = pd.concat([challenger_train_rows, retrain_validation_split], ignore_index=True)
    model, _ = retraining.refit(
        champion.model, champion.card, rows, training.get("checkpoints"), int(settings["seed"])
    )
    return model, retraining.champion_configuration(champion.card)


def compare_with_champion(
    champion: StoredModel,
    challenger: Any,
    challenger_configuration: dict[str, Any],
    challenger_train_rows: pd.DataFrame,
    retrain_validation_split: pd.DataFrame,
    retrain_test_split: pd.DataFrame,
    settings: dict[str, Any],
) -> dict[str, Any]:
    card = champion.card
    inputs = card["input_columns"]
    # matched on the inputs alone: matching the target too would keep exactly the rows whose
    # label changed since, which the champion gets wrong
    champion_trained_on, _ = evaluation.trained_on(
        retrain_test_split, card, Path(settings["splits_dir"]), champion.save_version, inputs
    )
    fitted_on = pd.concat([challenger_train_rows, retrain_validation_split], ignore_index=True)
    comparison = retraining.compare(
        champion,
        challenger,
        retrain_test_split,
        settings,
        champion_trained_on,
        evaluation.rows_in(retrain_test_split, fitted_on, inputs),
    )
    try:
        registered = registered_as(champion)
    except MlflowException as exc:
        logger.info("The MLflow registry could not be read: %s", exc.message)
        registered = None
    if registered:
        comparison["champion"]["registered_name"], comparison["champion"]["registered_version"] = (
            registered
        )
    kept_code = int(settings.get("exit_code_when_kept") or 0)
    return {
        **comparison,
        "challenger": challenger_configuration,
        "data": {
            "path": settings["data"],
            "champion_rows_added": bool(settings.get("add_champion_rows")),
        },
        "exit_code": 0 if comparison["promoted"] else kept_code,
    }


def ship_challenger(
    challenger: Any,
    retrain_comparison: dict[str, Any],
    challenger_train_rows: pd.DataFrame,
    retrain_validation_split: pd.DataFrame,
    retrain_test_split: pd.DataFrame,
    champion: StoredModel,
    settings: dict[str, Any],
    checkpoints: dict[str, Any],
) -> tuple[Any, bytes, str]:
    """A promoted challenger learns from every row (with retrain.refit_on_all_rows), as the
    train pipeline's shipped model does; one that lost is saved as it was judged."""
    if retrain_comparison["promoted"] and settings.get("refit_on_all_rows", True):
        rows = pd.concat(
            [challenger_train_rows, retrain_validation_split, retrain_test_split],
            ignore_index=True,
        )
        challenger, _ = retraining.refit(
            challenger, champion.card, rows, checkpoints, int(settings["seed"])
        )
    return challenger, *joblib_file(challenger)


def describe_challenger(
    champion: StoredModel,
    fitted_model: Any,
    retrain_comparison: dict[str, Any],
    challenger_train_rows: pd.DataFrame,
    retrain_validation_split: pd.DataFrame,
    retrain_test_split: pd.DataFrame,
    model_sha256: str,
    settings: dict[str, Any],
) -> dict[str, Any]:
    refit = bool(retrain_comparison["promoted"] and settings.get("refit_on_all_rows", True))
    trained_on = [challenger_train_rows, retrain_validation_split]
    return retraining.challenger_card(
        champion,
        retrain_comparison,
        pd.concat([*trained_on, *([retrain_test_split] if refit else [])], ignore_index=True),
        challenger_train_rows,
        configuration=retrain_comparison["challenger"],
        challenger_classes=getattr(fitted_model, "classes_", None),
        model_sha256=model_sha256,
        refit_on_all_rows=refit,
        data_source=str(settings["data"]),
        seed=int(settings["seed"]),
    )


def log_challenger(
    fitted_model: Any,
    model_card: dict[str, Any],
    retrain_comparison: dict[str, Any],
    retrain_train_split: pd.DataFrame,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The challenger logged to this MLflow run; registered, and the alias moved to it, only
    when promoted. Tags retrain.promoted and retrain.champion either way."""
    return log_retraining(
        fitted_model,
        model_card,
        retrain_train_split[model_card["input_columns"]],
        retrain_comparison,
        settings.get("alias"),
    )


def track_retraining(retrain_comparison: dict[str, Any]) -> dict[str, dict[str, float]]:
    """champion_<metric>, challenger_<metric>, dummy_<metric>, the improvement and the win
    share, comparable across retrain runs in the MLflow UI."""
    tracked = {
        f"{model}_{name}": value
        for model, metrics in retrain_comparison["metrics"].items()
        for name, value in metrics.items()
    }
    tracked["improvement"] = retrain_comparison["improvement"]
    tracked["promoted"] = float(retrain_comparison["promoted"])
    if retrain_comparison["challenger_win_share"] is not None:
        tracked["challenger_win_share"] = retrain_comparison["challenger_win_share"]
    return {name: {"value": float(v), "step": 0} for name, v in tracked.items() if pd.notna(v)}


def render_retrain_report(
    retrain_comparison: dict[str, Any], retrain_registration: dict[str, Any]
) -> str:
    return render_retrain_html(comparison=retrain_comparison, registration=retrain_registration)
