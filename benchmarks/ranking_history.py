"""How much a user's history is worth on MovieLens, out of the project's search: on the
ranking benchmark's time split (each user's last 20% held out), item popularity against the
history columns alone (item bias + affinity, no model) and LightGBM's and XGBoost's default
rankers with and without `dataset.item_column` (the time column not a feature).
Deterministic; numbers in benchmarks/ranking.md.

    uv run python benchmarks/ranking_history.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from ranking_bench import (
    GROUP,
    ITEM,
    TARGET,
    TIME,
    movielens,
    paired,
    popularity,
    scored,
    split_time,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from model_trainer.models.estimators import make_pipeline  # noqa: E402
from model_trainer.pipelines.model_configuration.nodes import encoding_for  # noqa: E402
from model_trainer.table.feature_types import infer_feature_types  # noqa: E402
from model_trainer.tasks.detection import detect_task  # noqa: E402
from model_trainer.tasks.ranking import GroupItemHistory  # noqa: E402

MODEL = yaml.safe_load((ROOT / "conf/base/parameters_model_configuration.yml").read_text())["model"]


def main() -> None:
    train, held = split_time(movielens())
    task = detect_task(
        train[TARGET], {"type": "ranking", "relevant_from": 4}, train[GROUP], item=train[ITEM]
    )
    baseline = popularity(train, held)

    def line(name: str, scores) -> None:
        gain = paired(held, scores, baseline, task)
        print(
            f"| {name} | {scored(held, scores, task)['ndcg']:.4f} | {gain['mean']:+.4f} | "
            f"{gain['low']:+.4f} .. {gain['high']:+.4f} |"
        )

    print("| scorer | ndcg | vs popularity | 95% interval |\n|---|---|---|---|")
    line("item popularity", baseline)
    history = GroupItemHistory(GROUP, ITEM).fit(train, train[TARGET]).transform(held)
    line("history alone", (history["history_item_bias"] + history["history_affinity"]).to_numpy())
    feature_types = infer_feature_types(train, TARGET, declared={GROUP: "drop", TIME: "drop"})
    encoding = {**encoding_for("ranking", MODEL["encoding"]), "imputation": "median"}
    for algorithm in ("lightgbm", "xgboost"):
        for item in (ITEM, None):
            ranking = {
                "group_column": GROUP,
                "item_column": item,
                "relevance_values": task["relevance_values"],
            }
            pipeline = make_pipeline(
                MODEL["algorithms"], algorithm, "ranking", {}, feature_types, encoding, 0,
                ranking=ranking,
            )  # fmt: skip
            pipeline.fit(train.drop(columns=[TARGET]), train[TARGET])
            label = f"{algorithm} defaults, {'with' if item else 'without'} the history"
            line(label, pipeline.predict(held.drop(columns=[TARGET])))


if __name__ == "__main__":
    main()
