"""Clustering: the search finds real groups, every algorithm assigns new rows, invalid
clusterings never win, fold stability is ARI-based, and a seed makes it repeatable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState
from sklearn.cluster import DBSCAN
from sklearn.datasets import make_blobs

from model_trainer.errors import ConfigurationError, ModelTrainerError
from model_trainer.serving.app import build_app
from model_trainer.serving.model_store import load_stored_model
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.tasks.clustering import (
    CLUSTERING_ALGORITHMS,
    NOISE,
    NearestTrainingPointClusterer,
    build_clustering_preprocessor,
    cluster_profiles,
    evaluate_clustering,
    external_scores,
    fold_stability,
    internal_scores,
    make_clustering_pipeline,
    search_clustering,
)
from tests.conftest import BENCH, run_kedro, run_task

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

PENGUINS = BENCH / "penguins"
MEASURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return pd.read_csv(PENGUINS / "train.csv")


@pytest.fixture(scope="module")
def penguins_new_rows() -> pd.DataFrame:
    return pd.read_csv(PENGUINS / "test.csv").drop(columns="species")


@pytest.fixture(scope="module")
def blobs() -> pd.DataFrame:
    X, _ = make_blobs(n_samples=300, centers=3, cluster_std=0.6, random_state=1)
    return pd.DataFrame(X, columns=["a", "b"])


def preprocessor_for(table: pd.DataFrame):
    return build_clustering_preprocessor(infer_feature_types(table, None), {})


@pytest.mark.slow
def test_search_on_penguin_measurements_recovers_species(penguins: pd.DataFrame) -> None:
    X = penguins[MEASURES]
    study, summary = search_clustering(
        X, preprocessor_for(X), n_trials=12, seed=0, y_true=penguins["species"]
    )
    assert summary["external_scores"]["ari"] > 0.3
    assert summary["algorithm"] in CLUSTERING_ALGORITHMS
    assert summary["best_value"] == pytest.approx(summary["internal_scores"]["silhouette"])
    assert summary["n_trials"] == len(study.trials) == 12
    # Every family of `auto` ran once (the portfolio) before TPE took over.
    assert summary["algorithms_tried"] == sorted(
        ["kmeans", "gaussian_mixture", "agglomerative", "hdbscan"]
    )
    stability = summary["cross_validation"]
    assert stability["folds"] == 5 == len(stability["fold_scores"])
    assert all(-1.0 <= s <= 1.0 for s in stability["fold_scores"])


@pytest.mark.slow
def test_davies_bouldin_is_minimised(penguins: pd.DataFrame) -> None:
    X = penguins[MEASURES]
    study, summary = search_clustering(
        X, preprocessor_for(X), algorithms="kmeans", metric="davies_bouldin", n_trials=5
    )
    assert summary["direction"] == "minimize"
    values = [t.value for t in study.trials if t.state == TrialState.COMPLETE]
    assert summary["best_value"] == min(values)


@pytest.mark.parametrize("name", sorted(CLUSTERING_ALGORITHMS))
def test_every_algorithm_assigns_new_rows(
    name: str, penguins: pd.DataFrame, penguins_new_rows: pd.DataFrame
) -> None:
    X = penguins.drop(columns="species")
    pipeline = make_clustering_pipeline(name, None, preprocessor_for(X), seed=0, n_rows=len(X))
    labels = pipeline.fit_predict(X)
    assigned = pipeline.predict(penguins_new_rows)
    assert len(assigned) == len(penguins_new_rows)
    assert set(assigned) <= set(labels)
    # A training row is its own nearest neighbour: predict agrees with the fit.
    assert (pipeline.predict(X) == labels).mean() > 0.99
    wrapped = CLUSTERING_ALGORITHMS[name]["predict"] == "nearest_training_point"
    assert isinstance(pipeline["model"], NearestTrainingPointClusterer) == wrapped


def test_noise_stays_noise_and_sampled_fit_assigns_every_row() -> None:
    X, _ = make_blobs(n_samples=200, centers=2, cluster_std=0.3, random_state=0)
    outliers = np.array([[40.0, 40.0], [-40.0, 40.0]])
    train = np.vstack([X, outliers])

    model = NearestTrainingPointClusterer(DBSCAN(eps=1.0, min_samples=5)).fit(train)
    assert (model.labels_[-2:] == NOISE).all()
    assert (model.predict(outliers + 0.1) == NOISE).all()
    assert set(model.predict(X[:10] + 0.01)) <= set(model.labels_[:200])
    sampled = NearestTrainingPointClusterer(
        DBSCAN(eps=1.0, min_samples=5), max_fit_rows=50, random_state=0
    ).fit(train)
    assert len(sampled.labels_) == len(train)
    assert sampled.neighbors_.n_samples_fit_ == 50


def test_internal_scores_mark_degenerate_clusterings_invalid() -> None:
    X = np.random.default_rng(0).normal(size=(40, 2))
    one = internal_scores(X, np.zeros(40, dtype=int))
    assert one["valid"] is False and one["silhouette"] is None and one["n_clusters"] == 1
    noise = internal_scores(X, np.full(40, NOISE))
    assert noise["valid"] is False and noise["noise_share"] == 1.0
    mostly_noise = internal_scores(X, np.r_[np.full(30, NOISE), np.zeros(5), np.ones(5)])
    assert mostly_noise["valid"] is False and "noise" in mostly_noise["reason"]
    outlier = internal_scores(X, np.r_[np.zeros(39), [1]])
    assert outlier["valid"] is False and "1 row" in outlier["reason"]
    fine = internal_scores(X, (X[:, 0] > 0).astype(int))
    assert fine["valid"] is True and -1.0 <= fine["silhouette"] <= 1.0


def test_invalid_trials_are_pruned_and_never_chosen(blobs: pd.DataFrame) -> None:
    registry = {
        "dbscan": {
            **CLUSTERING_ALGORITHMS["dbscan"],
            "search_space": {"eps": {"type": "categorical", "choices": [100.0, 1.0]}},
            "portfolio": [{"eps": 100.0}, {"eps": 1.0}],  # one cluster, then the three blobs
        }
    }
    study, summary = search_clustering(
        blobs, preprocessor_for(blobs), algorithms="dbscan", n_trials=2, registry=registry
    )
    first = study.trials[0]
    assert first.state == TrialState.PRUNED and "1 cluster" in first.user_attrs["invalid"]
    assert summary["best_params"] == {"eps": 1.0} and summary["n_pruned"] == 1
    only_invalid = {"dbscan": {**registry["dbscan"], "portfolio": [{"eps": 100.0}]}}
    only_invalid["dbscan"]["search_space"] = {"eps": {"type": "categorical", "choices": [100.0]}}
    with pytest.raises(ModelTrainerError, match="valid clustering"):
        search_clustering(
            blobs, preprocessor_for(blobs), algorithms="dbscan", n_trials=2, registry=only_invalid
        )


@pytest.mark.slow
def test_fold_stability_is_near_one_for_separated_blobs(blobs: pd.DataFrame) -> None:
    pipeline = make_clustering_pipeline("kmeans", {"n_clusters": 3}, preprocessor_for(blobs))
    stability = fold_stability(pipeline, blobs, folds=4, seed=0)
    assert stability["folds"] == 4
    assert all(-1.0 <= s <= 1.0 for s in stability["fold_scores"])
    assert stability["mean"] > 0.95
    # Too many clusters for three blobs: the extra splits move between fold fits.
    unstable = fold_stability(
        make_clustering_pipeline("kmeans", {"n_clusters": 9}, preprocessor_for(blobs)), blobs
    )
    assert unstable["mean"] < stability["mean"]


@pytest.mark.slow
def test_same_seed_same_search(penguins: pd.DataFrame) -> None:
    X = penguins[MEASURES]
    runs = [search_clustering(X, preprocessor_for(X), n_trials=7, seed=3) for _ in range(2)]
    (study_a, a), (study_b, b) = runs
    assert [t.params for t in study_a.trials] == [t.params for t in study_b.trials]
    assert a["best_params"] == b["best_params"] and a["best_value"] == b["best_value"]
    assert a["cross_validation"] == b["cross_validation"]


@pytest.mark.slow
def test_stored_study_resumes_to_its_total(tmp_path: Path, blobs: pd.DataFrame) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    kwargs = {"algorithms": "kmeans", "storage": storage, "seed": 0}
    search_clustering(blobs, preprocessor_for(blobs), n_trials=3, **kwargs)
    study, summary = search_clustering(blobs, preprocessor_for(blobs), n_trials=5, **kwargs)
    assert len(study.trials) == 5 and summary["storage"] == storage


def test_unknown_algorithm_or_metric_is_a_configuration_error(blobs: pd.DataFrame) -> None:
    with pytest.raises(ConfigurationError, match="Unknown clustering algorithm 'kmedoids'") as err:
        make_clustering_pipeline("kmedoids", None, preprocessor_for(blobs))
    assert "hdbscan" in err.value.remediation and "kmeans" in err.value.remediation
    with pytest.raises(ConfigurationError, match="Unknown clustering algorithm"):
        search_clustering(blobs, preprocessor_for(blobs), algorithms=["kmeans", "spectral"])
    with pytest.raises(ConfigurationError, match="metric 'inertia'") as err:
        search_clustering(blobs, preprocessor_for(blobs), metric="inertia")
    assert "davies_bouldin" in err.value.remediation


def test_external_scores_ignore_label_names_and_missing_truth() -> None:
    truth = pd.Series(["a", "a", "b", "b", None, "c", "c"])
    assert external_scores(truth, [5, 5, 7, 7, 0, 2, 2]) == {"ari": 1.0, "nmi": 1.0}
    assert external_scores(truth, [0, 1, 0, 1, 0, 0, 1])["ari"] < 0.1


def test_profiles_describe_each_cluster(penguins: pd.DataFrame) -> None:
    X = penguins.drop(columns="species")
    types = infer_feature_types(X, None)
    pipeline = make_clustering_pipeline(
        "kmeans", {"n_clusters": 3}, build_clustering_preprocessor(types, {})
    )
    labels = pipeline.fit_predict(X)
    metrics = evaluate_clustering(pipeline, X, labels, penguins["species"])
    assert metrics["valid"] and metrics["n_clusters"] == 3 and metrics["ari"] > 0.3
    profiles = cluster_profiles(X, labels, types)
    assert list(profiles["cluster"]) == ["0", "1", "2", "all"]
    clusters = profiles[profiles["cluster"] != "all"]
    assert clusters["size"].sum() == len(X) and clusters["share"].sum() == pytest.approx(1.0)
    overall = profiles.set_index("cluster").loc["all"]
    assert overall["body_mass_g mean"] == pytest.approx(X["body_mass_g"].mean())
    assert overall["island top"] == X["island"].mode()[0]
    # The clusters differ where the species do: body mass spans more than 500 g across them.
    assert np.ptp(clusters["body_mass_g mean"]) > 500
    assert {"island top share", "sex top"} <= set(profiles.columns)


@pytest.mark.e2e
def test_kedro_task_clusters_without_a_target_and_the_model_assigns_new_rows(project: Path):
    shutil.copy(PENGUINS / "train.csv", project / "data/01_raw/penguins.csv")
    spec = {
        "trainDataPath": "data/01_raw/penguins.csv",
        "modelType": "clustering",
        "features": MEASURES,
        "hyperparameterSearch": {"nTrials": 6},
    }

    output = run_task(project, spec)
    assert output["metrics"]["silhouette"] > 0.3 and output["metrics"]["n_clusters"] >= 2
    assert output["bestParams"]["algorithm"] in {
        "kmeans",
        "gaussian_mixture",
        "agglomerative",
        "hdbscan",
    }
    assert (
        0.0 <= output["crossValidation"]["mean"] <= 1.0 and output["crossValidation"]["folds"] == 5
    )
    assert output["crossValidation"]["metric"] == "ari", "fold stability, not the silhouette"
    profiles = pd.read_csv(project / "data/08_reporting/cluster_profiles.csv")
    assert profiles["cluster"].iloc[-1] == "all" and "body_mass_g mean" in profiles
    report = (project / "data/08_reporting/report.html").read_text()
    assert "Cluster profiles" in report and "clusters.png" in report
    decisions = json.loads((project / "data/08_reporting/decisions.json").read_text())
    assert any(d["choice"].endswith("stability") for d in decisions)

    stored = load_stored_model(None, project / "data/06_models")
    rows = pd.read_csv(project / "data/01_raw/penguins.csv").head(10)
    with TestClient(build_app(stored)) as client:
        records = json.loads(rows.to_json(orient="records"))
        answer = client.post("/predict", json={"records": records})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == stored.model.predict(rows).tolist()


@pytest.mark.e2e
def test_kedro_run_train_reports_how_well_clusters_find_a_reference_column(project: Path):
    shutil.copy(PENGUINS / "train.csv", project / "data/01_raw/penguins.csv")

    result = run_kedro(
        project,
        "run",
        "--pipeline=train",
        "--params=dataset.path=data/01_raw/penguins.csv,dataset.target=species,"
        "task.type=clustering,tuning.n_trials=6,split.test_fraction=0.3",
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    training = json.loads((project / "data/08_reporting/training_metrics.json").read_text())
    # species is no feature, only the yardstick: the clusters find it far better than chance
    # (on the 83 test rows: measured 0.46 against 0.004 for a random assignment)
    assert metrics["ari"] > training["baselines"]["dummy"]["ari"] + 0.15
    card = json.loads(next((project / "data/06_models").glob("model_card.json/*/*")).read_text())
    assert card["task"] == "clustering" and "species" not in card["features"]
