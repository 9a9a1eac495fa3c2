"""A model trained as the pipelines train it, on a small real table, for tests of what comes
after training (the report, the model card): split, one-trial search, final fit, baselines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from model_trainer.evaluation.held_out import holdout_metrics
from model_trainer.pipelines.model_configuration.nodes import configure_model
from model_trainer.search import trial_records, tuning
from model_trainer.serving.integrity import joblib_file
from model_trainer.serving.model_card import model_card
from model_trainer.serving.model_store import StoredModel
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.table.splitting import split_holdout
from model_trainer.tasks.detection import detect_task
from model_trainer.training import final_fit as training
from model_trainer.training.baselines import baseline_pipelines
from model_trainer.training.fitting import fit_quietly

ROOT = Path(__file__).resolve().parents[1]
with (ROOT / "conf" / "base" / "parameters_model_configuration.yml").open() as handle:
    MODEL = yaml.safe_load(handle)["model"]


@dataclass
class Trained:
    task: dict[str, Any]
    feature_types: dict[str, Any]
    configuration: dict[str, Any]
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    study: Any
    summary: dict[str, Any]
    info: dict[str, Any]
    model: Any
    baselines: dict[str, Any]

    @property
    def X_test(self) -> pd.DataFrame:
        return self.test.drop(columns=[self.feature_types["target"]])

    @property
    def y_test(self) -> pd.Series:
        return self.test[self.feature_types["target"]]


def search_and_fit(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    task: dict,
    feature_types: dict,
    configuration: dict,
) -> tuple[Any, dict, dict, Any]:
    """One trial (tuning off: the first portfolio configuration), summarized, and the final
    model fit on train + validation, as the pipelines do: study, summary, info and model."""
    target = feature_types["target"]
    rows = pd.concat([train, validation], ignore_index=True)
    X, y = rows.drop(columns=[target]), rows[target]
    settings = {"enabled": False}
    study = tuning.run_study(
        X,
        y,
        task=task,
        feature_types=feature_types,
        configuration=configuration,
        settings=settings,
        study_name="trained",
    )
    summary = trial_records.summarize_study(study, configuration, settings)
    pipeline, info = training.build_final_pipeline(
        summary, task, feature_types, configuration, train, validation, {}
    )
    model, info["convergence_warnings"] = fit_quietly(pipeline, X, y)
    return study, summary, info, model


def train_as_the_pipelines_do(
    table: pd.DataFrame, target: str, algorithm: str, declared: dict | None = None
) -> Trained:
    task = detect_task(table[target], {})
    feature_types = infer_feature_types(table, target, declared=declared)
    train, validation, test = split_holdout(table, target, task, {})
    configuration = configure_model(
        task,
        train,
        validation,
        "auto",
        {**MODEL, "algorithm": algorithm},
        {"folds": 3, "seed": 0},
        {},
        0,
    )
    study, summary, info, model = search_and_fit(
        train, validation, task, feature_types, configuration
    )
    rows = pd.concat([train, validation], ignore_index=True)
    X, y = rows.drop(columns=[target]), rows[target]
    baselines = {
        name: fit_quietly(baseline, X, y)[0]
        for name, baseline in baseline_pipelines(task, feature_types, configuration).items()
    }
    return Trained(
        task, feature_types, configuration, train, validation, test, study, summary, info, model,
        baselines,
    )  # fmt: skip


def stored_model(
    table: pd.DataFrame, target: str, algorithm: str
) -> tuple[StoredModel, pd.DataFrame]:
    """A model trained as the pipelines train it, with its card, and its test split."""
    trained = train_as_the_pipelines_do(table, target, algorithm)
    rows = pd.concat([trained.train, trained.validation, trained.test], ignore_index=True)
    card = model_card(
        task=trained.task,
        feature_types=trained.feature_types,
        input_columns=[c for c in table.columns if c != target],
        configuration=trained.configuration,
        training_info=trained.info,
        test_metrics=holdout_metrics(
            {"m": trained.model}, trained.X_test, trained.y_test, trained.task
        )["m"],
        baseline_metrics={},
        cross_validation=trained.summary["cross_validation"],
        data_fingerprint=tuning.data_fingerprint(rows),
        n_rows=len(rows),
        refit_on_all_rows=False,
        registered_model_name=None,
        model_sha256=joblib_file(trained.model)[1],
    )
    return StoredModel(model=trained.model, card=card, source=algorithm), trained.test
