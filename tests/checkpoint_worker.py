"""A checkpointed LightGBM fit of the diamonds prices, run as its own process so a test can kill
it for real: `python tests/checkpoint_worker.py <checkpoint folder> <predictions.npy> [pause]`.
It pauses `pause` seconds after each checkpoint (so the kill lands mid-fit), logs where it
resumed from, and saves its predictions of the diamonds test rows."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from model_trainer.training.checkpoints import checkpointed_fit

DIAMONDS = Path(__file__).resolve().parents[2] / "shared" / "bench" / "data" / "diamonds"
CATEGORICAL = ["cut", "color", "clarity"]
ROUNDS, EVERY = 200, 20


def diamonds(split: str) -> tuple[pd.DataFrame, pd.Series]:
    table = pd.read_csv(DIAMONDS / f"{split}.csv")
    return table.drop(columns=["price"]), table["price"]


def lightgbm_pipeline(rounds: int = ROUNDS) -> Pipeline:
    """Bagging and column sampling on, so resuming must also get the random draws right."""
    preprocess = ColumnTransformer(
        [("categorical", OrdinalEncoder(), CATEGORICAL)], remainder="passthrough"
    )
    model = lightgbm.LGBMRegressor(
        n_estimators=rounds,
        learning_rate=0.05,
        num_leaves=31,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        random_state=7,
        n_jobs=1,
        verbosity=-1,
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


def main(folder: str, output: str, pause: float) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    X, y = diamonds("train")
    model, info = checkpointed_fit(
        lightgbm_pipeline(), X, y, EVERY, folder, after_chunk=lambda rounds: time.sleep(pause)
    )
    print(f"resumed_from={info['resumed_from']} rounds={info['rounds']}", flush=True)
    np.save(output, model.predict(diamonds("test")[0]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
