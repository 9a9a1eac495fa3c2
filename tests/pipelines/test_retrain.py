"""`kedro run --pipelines=retrain` as a scheduler runs it, on a copy of the session's trained
project: the champion's configuration trained on new rows, promoted only when it wins (it then
serves as "the latest model" and takes the registry alias), kept otherwise with the exit code
asked for; and the inference pipeline's drift as the trigger."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.serving.model_store import load_stored_model
from tests.conftest import query, run_kedro, run_task

pytestmark = pytest.mark.e2e

REGISTERED = "01_raw_credit_data_Status"


@pytest.fixture
def project(trained_project: Path, tmp_path: Path) -> Path:
    """The trained project copied, so a promotion here leaves the session's latest model alone."""
    return Path(shutil.copytree(trained_project, tmp_path / "project"))


def run_tags(project: Path, name: str) -> dict[str, str]:
    [(run_id,)] = query(
        project / "mlflow.db",
        f"select run_uuid from runs where name = '{name}' order by start_time desc limit 1",
    )
    return dict(
        query(project / "mlflow.db", f"select key, value from tags where run_uuid = '{run_id}'")
    )


def registry(project: Path) -> tuple[list[int], dict[str, int]]:
    """The champion's registered versions and aliases (other tests may have added some)."""
    database = project / "mlflow.db"
    where = f"where name = '{REGISTERED}'"
    versions = [v for (v,) in query(database, f"select version from model_versions {where}")]
    aliases = query(database, f"select alias, version from registered_model_aliases {where}")
    return sorted(versions), dict(aliases)


def new_data(project: Path, name: str, relabel: bool) -> Path:
    """The credit applications again; with `relabel`, judged by a new rule (the amount asked
    against the price decides), as if the world had changed since training."""
    rows = pd.read_csv(project / "data" / "01_raw" / "credit_data.csv")
    if relabel:
        score = rows["Amount"] / rows["Price"] + np.random.default_rng(0).normal(0, 0.1, len(rows))
        rows["Status"] = np.where(score > score.quantile(0.7), "bad", "good")
    path = project / "data" / "01_raw" / name
    rows.to_csv(path, index=False)
    return path


def test_a_challenger_that_wins_is_promoted_and_served(project: Path):
    models = project / "data" / "06_models"
    champion = load_stored_model(None, models)
    data = new_data(project, "relabelled.csv", relabel=True)
    versions_before, aliases_before = registry(project)  # other tests may have deployed

    result = run_kedro(project, "run", "--pipelines=retrain", f"--params=retrain.data={data}")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "Promoted the challenger" in result.stdout
    latest = load_stored_model(None, models)
    assert latest.save_version != champion.save_version
    assert latest.card["retraining"]["promoted"] is True
    assert latest.card["retraining"]["champion"] == champion.source
    assert latest.card["refit_on_all_rows"] and latest.card["n_rows"] == len(pd.read_csv(data))
    card_for_people = models / "model_card.md" / latest.save_version / "model_card.md"
    assert f"- **Retrained** from `{champion.source}`: promoted." in card_for_people.read_text()
    comparison = json.loads((project / "data/08_reporting/retrain_comparison.json").read_text())
    new_version = max(versions_before) + 1
    assert comparison["promoted"]
    assert comparison["champion"]["registered_version"] == str(max(versions_before))
    versions, aliases = registry(project)
    assert versions == [*versions_before, new_version]
    assert aliases == aliases_before, "the champion alias is deploy's to move, after its checks"
    tags = run_tags(project, "retrain")
    assert tags["retrain.promoted"] == "true" and tags["retrain.champion"] == champion.source
    report = (project / "data/08_reporting/retrain_report.html").read_text()
    assert "Promoted:" in report and f"{REGISTERED} version {new_version}" in report
    # the new rows' splits are the promoted model's (drift is measured against them), kept out
    # of the way of the train pipeline's stages
    inputs = project / "data" / "05_model_input"
    split = inputs / "retrain" / "train_split.parquet" / latest.save_version
    assert (split / "train_split.parquet").is_file()
    assert not (inputs / "train_split.parquet" / latest.save_version).exists()

    # the next batch drifted: inference says so by its exit code and a tag, the scheduler's cue
    batch = pd.read_csv(data).drop(columns="Status")
    batch["Income"] = batch["Income"] * 4
    batch.to_csv(project / "batch.csv", index=False)
    result = run_kedro(
        project,
        "run",
        "--pipelines=inference",
        "--params=inference.data=batch.csv,inference.drift.exit_code=4",
    )
    assert result.returncode == 4, result.stderr[-3000:]
    assert "Drift in Income" in result.stdout
    tags = run_tags(project, "inference")
    assert tags["drift.detected"] == "true" and "Income" in tags["drift.features"]


def test_a_challenger_short_of_the_margin_is_kept_out_with_the_exit_code_asked(project: Path):
    models = project / "data" / "06_models"
    champion = load_stored_model(None, models)
    data = new_data(project, "same.csv", relabel=False)
    registered_before = registry(project)

    result = run_kedro(
        project,
        "run",
        "--pipelines=retrain",
        f"--params=retrain.data={data},retrain.margin=10,retrain.exit_code_when_kept=3",
    )

    assert result.returncode == 3, result.stderr[-3000:]
    assert "Kept the champion" in result.stdout
    assert load_stored_model(None, models).save_version == champion.save_version
    kept_out = json.loads(max((models / "model_card.json").glob("*/model_card.json")).read_text())
    assert kept_out["retraining"]["promoted"] is False
    assert registry(project) == registered_before, "nothing registered, no alias moved"
    assert run_tags(project, "retrain")["retrain.promoted"] == "false"
    comparison = json.loads((project / "data/08_reporting/retrain_comparison.json").read_text())
    # the champion was refit on every row of the bundled data: it has seen all these inputs,
    # too many to leave out
    seen = comparison["trained_on"]
    assert seen["champion"] == comparison["n_test_rows"] and seen["left_out"] == 0


def test_retrain_without_data_names_the_parameter(project: Path):
    result = run_kedro(project, "run", "--pipelines=retrain")

    assert result.returncode == 1
    assert "retrain.data" in result.stderr


def test_the_alias_moves_to_a_promoted_challenger_when_asked(project: Path):
    data = new_data(project, "relabelled.csv", relabel=True)
    versions_before, aliases_before = registry(project)

    result = run_kedro(
        project, "run", "--pipelines=retrain", f"--params=retrain.data={data},retrain.alias=live"
    )

    assert result.returncode == 0, result.stderr[-3000:]
    new_version = max(versions_before) + 1
    assert registry(project) == (
        [*versions_before, new_version],
        {**aliases_before, "live": new_version},
    )
    report = (project / "data/08_reporting/retrain_report.html").read_text()
    assert f"{REGISTERED} version {new_version}, alias 'live'" in report


def test_a_fresh_search_finds_the_challenger_in_the_champions_space(project: Path):
    data = new_data(project, "relabelled.csv", relabel=True)
    studies = project / "data/06_models/optuna_studies.db"
    studies_before = query(studies, "select study_name from studies")

    result = run_kedro(
        project,
        "run",
        "--pipelines=retrain",
        "--env=test",  # tuning.n_trials 3
        f"--params=retrain.data={data},retrain.search=true",
    )

    assert result.returncode == 0, result.stderr[-3000:]
    comparison = json.loads((project / "data/08_reporting/retrain_comparison.json").read_text())
    assert comparison["promoted"]
    assert comparison["challenger"]["source"].startswith("a fresh search: 3 trials in study")
    latest = load_stored_model(None, project / "data" / "06_models")
    assert latest.card["algorithm"] == comparison["challenger"]["algorithm"]
    assert latest.card["retraining"]["configuration"] == comparison["challenger"]["source"]
    # the trials are nested in the retrain run, in a study of their own
    database = project / "mlflow.db"
    [(retrain_run,)] = query(
        database,
        "select run_uuid from runs where name = 'retrain' order by start_time desc limit 1",
    )
    nested = query(
        database,
        f"select count(*) from tags where key = 'mlflow.parentRunId' and value = '{retrain_run}'",
    )
    assert nested == [(3,)]
    studies_after = query(studies, "select study_name from studies")
    assert len(studies_after) == len(studies_before) + 1, "a study of its own"


def test_an_agent_retrains_through_the_task_json(project: Path):
    data = new_data(project, "relabelled.csv", relabel=True)
    versions_before, _ = registry(project)

    result = run_task(project, {"task": "retrain_model", "newDataPath": str(data)})

    assert result["success"] is True and result["promoted"] is True
    assert result["metric"] == "roc_auc"
    scores = result["metrics"]
    assert scores["challenger"]["roc_auc"] > scores["champion"]["roc_auc"]
    assert result["registeredModel"] == {
        "name": REGISTERED,
        "version": str(max(versions_before) + 1),
        "alias": None,
    }
    assert Path(result["modelPath"]).is_file() and result["reportPath"].endswith(".html")
    assert result["challenger"]["source"] == "the champion's configuration"
