"""Big tables get smaller numeric dtypes; the target, time and group columns never do."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model_trainer.table.memory import downcast_features


def table(rows: int = 200_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "count": rng.integers(0, 100, rows),
            "code": rng.integers(-30_000, 30_000, rows),
            "price": rng.normal(1_000, 300, rows),
            "flag": rng.random(rows) > 0.5,
            "city": rng.choice(["Lyon", "Oslo"], rows),
            "when": 1.7e9 + rng.integers(0, 10**6, rows).astype(float),
            "user": rng.integers(0, 10**12, rows),
            "target": rng.normal(size=rows),
        }
    )


def test_a_big_table_shrinks_its_features_and_keeps_every_integer_exact():
    original = table()
    small = downcast_features(original, ["target", "when", "user"], above_mb=1)
    assert small["count"].dtype == np.int8 and small["code"].dtype == np.int16
    assert (small["count"] == original["count"]).all() and (small["code"] == original["code"]).all()
    assert small["price"].dtype == np.float32
    np.testing.assert_allclose(small["price"], original["price"], rtol=1e-7)
    for kept in ("target", "when", "user", "flag", "city"):
        assert small[kept].dtype == original[kept].dtype
        assert small[kept].equals(original[kept])
    assert small.memory_usage(deep=True).sum() < 0.8 * original.memory_usage(deep=True).sum()


def test_a_table_under_the_threshold_or_with_it_off_is_left_as_it_is():
    original = table(1_000)
    assert downcast_features(original, ["target"], above_mb=256) is original
    assert downcast_features(original, ["target"], above_mb=None) is original
