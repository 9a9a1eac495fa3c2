"""The leak audit: what makes a model look better than it will be.

Four checks, each naming what it found: a feature that alone all but decides the target (it is
often recorded after the outcome: a card's spending says the card was granted), test rows that
repeat training rows, test rows no later than training rows when a time column orders them, and
groups on both sides of the split when a group column separates them. The single-feature check
reads the training rows' labels only; the repeated-rows check compares whole rows, target
included, so it reads the test rows' labels to say that a row repeats, never to shape a model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import TargetEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.table.splitting import time_values

ACTIONS = ("warn", "drop", "fail")
SHOWN_ROWS = 10  # row numbers listed per finding


def audit(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    target: str | None,
    task_type: str,
    feature_columns: Sequence[str],
    categorical: Sequence[str],
    time_column: str | None,
    group_column: str | None,
    settings: Mapping[str, Any],
    within_groups: bool = False,
) -> list[dict[str, Any]]:
    """Every finding of the four checks. `train` holds the rows a model learns from (train and
    validation splits), `test` the held-out rows; `feature_columns` the model's inputs.
    `within_groups`: the split held out each group's latest rows, so time is checked per group."""
    findings = []
    if target and task_type in ("classification", "regression", "ranking"):
        findings += single_feature_leaks(
            train, target, task_type, feature_columns, categorical, settings
        )
    columns = [*feature_columns, *([target] if target else [])]
    findings += repeated_rows(train, test, columns, float(settings["duplicate_share_above"]))
    if time_column:
        findings += time_overlap(train, test, time_column, group_column if within_groups else None)
    elif group_column:  # with a time column too, the split is by time: groups cross it by design
        findings += group_overlap(train, test, group_column)
    return findings


def single_feature_leaks(
    train: pd.DataFrame,
    target: str,
    task_type: str,
    feature_columns: Sequence[str],
    categorical: Sequence[str],
    settings: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Each feature alone, as a shallow tree cross-validated on (a sample of) the training rows:
    a score at or above `single_feature_score` (ROC AUC for classes, R² otherwise) is a leak."""
    rows = train.sample(min(len(train), int(settings["max_rows"])), random_state=0)
    y = rows[target]
    classes = task_type == "classification"
    if classes:
        y = pd.Series(pd.factorize(y)[0], index=y.index)
        if y.value_counts().min() < 3:
            return []  # too few rows of a class to cross-validate a score
    limit = float(settings["single_feature_score"])
    # What action drop removes must not depend on the machine's speed: it checks every feature.
    seconds = math.inf if settings["action"] == "drop" else float(settings["max_seconds"])
    deadline = time.monotonic() + seconds
    findings = []
    for checked, column in enumerate(feature_columns):
        if time.monotonic() > deadline:
            findings.append(_unfinished(checked, len(feature_columns), settings))
            break
        score = _alone(rows[column], y, classes, column in categorical)
        if score is not None and score >= limit:
            measure = "ROC AUC" if classes else "R²"
            findings.append(
                {
                    "check": "single_feature",
                    "subject": column,
                    "score": round(score, 4),
                    "evidence": f"'{column}' alone scores {measure} {score:.3f} on the training "
                    f"rows (cross-validated; the audit flags {limit:g} and above)",
                    "advice": f"Check that '{column}' is known before the outcome it predicts; if "
                    "it is recorded after it, drop it (dataset.features, or "
                    "dataset.leak_audit.action: drop).",
                }
            )
    return findings


def _unfinished(checked: int, total: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "check": "single_feature_unfinished",
        "subject": f"{total - checked} features",
        "score": None,
        "evidence": f"the single-feature check reached its {settings['max_seconds']} s limit "
        f"after {checked} of {total} features; the rest were not checked",
        "advice": "Raise dataset.leak_audit.max_seconds to check every feature.",
        "leak": False,
    }


def _alone(column: pd.Series, y: pd.Series, classes: bool, categorical: bool) -> float | None:
    """The held-out score of a depth-4 tree on `column` alone (fit on two thirds of the rows,
    scored on the rest): cheap enough to run on every feature of a wide table."""
    if categorical or not pd.api.types.is_numeric_dtype(column):
        if not categorical and column.nunique() > 0.5 * len(column):
            return None  # free text or ids: no level repeats enough to say anything
        # Cross-fitted: each row's code comes from the other rows' labels, never its own.
        encoder = TargetEncoder(target_type="auto" if classes else "continuous", random_state=0)
        X = encoder.fit_transform(column.astype(str).to_frame(), y)
    else:
        values = column.astype(float).to_numpy()
        # trees take missing values, not infinite ones: an infinity is read as missing here
        X = np.where(np.isinf(values), np.nan, values).reshape(-1, 1)
    fit_X, score_X, fit_y, score_y = train_test_split(
        X, y, test_size=1 / 3, random_state=0, stratify=y if classes else None
    )
    if classes:
        tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(fit_X, fit_y)
        proba = tree.predict_proba(score_X)
        if proba.shape[1] == 2:
            return float(roc_auc_score(score_y, proba[:, 1]))
        return float(roc_auc_score(score_y, proba, multi_class="ovr", labels=tree.classes_))
    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(fit_X, fit_y)
    variance = float(np.var(score_y))
    error = float(np.mean((tree.predict(score_X) - score_y) ** 2))
    return 1.0 - error / variance if variance > 0 else None


def repeated_rows(
    train: pd.DataFrame, test: pd.DataFrame, columns: Sequence[str], share_above: float
) -> list[dict[str, Any]]:
    """Test rows equal to a training row in every column (features and target): their scores
    measure memory. Some tables repeat rows by nature (few, coarse columns), so the finding
    says how often the training rows repeat each other too, and it is made only when more
    than `share_above` of the test rows repeat."""
    columns = list(columns)
    if not columns or test.empty:
        return []
    train_hashes = pd.util.hash_pandas_object(train[columns], index=False)
    hashes = pd.util.hash_pandas_object(test[columns], index=False)
    repeated = test.index[hashes.isin(set(train_hashes)).to_numpy()]
    share = len(repeated) / len(test)
    if share <= share_above:
        return []
    return [
        {
            "check": "duplicate_rows",
            "subject": f"{len(repeated)} test rows",
            "score": round(share, 4),
            "rows": [int(i) for i in repeated[:SHOWN_ROWS]],
            "evidence": f"{len(repeated)} of {len(test)} test rows ({share:.1%}) repeat a training "
            f"row in every column (test rows {_listed(repeated)}); the training rows repeat each "
            f"other at {train_hashes.duplicated().mean():.1%}",
            "advice": "If repeated rows are the same case recorded twice, remove them at the "
            "source or group them (dataset.group_column), so the test score is not a memory test.",
        }
    ]


def time_overlap(
    train: pd.DataFrame, test: pd.DataFrame, time_column: str, group_column: str | None = None
) -> list[dict[str, Any]]:
    """With a time column, every test row should come after every training row (times read as
    the time-ordered split reads them: dates in text parsed, mixed UTC offsets included); with
    `group_column`, after every training row of its own group."""
    times = time_values(test, time_column)
    if group_column:
        by_group = time_values(train, time_column).groupby(train[group_column].to_numpy()).max()
        latest = test[group_column].map(by_group)
        early = test.index[(times <= latest).to_numpy()]
        latest = f"its group's latest in '{group_column}'"
    else:
        latest = time_values(train, time_column).max()
        early = test.index[(times <= latest).to_numpy()]
    if not len(early):
        return []
    return [
        {
            "check": "time_overlap",
            "subject": time_column,
            "score": round(len(early) / len(test), 4),
            "rows": [int(i) for i in early[:SHOWN_ROWS]],
            "evidence": f"{len(early)} test rows are no later than the latest training row "
            f"({latest}) by '{time_column}' (test rows {_listed(early)})",
            "advice": "Rows sharing a time should share a split; check the time column's values.",
        }
    ]


def group_overlap(
    train: pd.DataFrame, test: pd.DataFrame, group_column: str
) -> list[dict[str, Any]]:
    """With a group column, no group should be on both sides of the split."""
    shared = sorted(set(train[group_column].dropna()) & set(test[group_column].dropna()), key=str)
    if not shared:
        return []
    return [
        {
            "check": "group_overlap",
            "subject": group_column,
            "score": len(shared),
            "evidence": f"{len(shared)} groups of '{group_column}' are in both the training and "
            f"the test rows (e.g. {', '.join(map(str, shared[:SHOWN_ROWS]))})",
            "advice": "Each group belongs on one side: check the group column's values.",
        }
    ]


def act(findings: list[dict[str, Any]], action: str) -> list[str]:
    """The features to drop (action drop), after refusing the run (action fail) if a leak was
    found; warn changes nothing."""
    if action not in ACTIONS:
        raise ConfigurationError(
            f"dataset.leak_audit.action is '{action}'.", f"Use one of: {', '.join(ACTIONS)}."
        )
    findings = leaks(findings)
    if findings and action == "fail":
        raise DataValidationError(
            "The leak audit found: " + "; ".join(f["evidence"] for f in findings) + ".",
            " ".join(dict.fromkeys(f["advice"] for f in findings))
            + " Or set dataset.leak_audit.action to warn (report them) or drop (drop leaking "
            "features).",
        )
    if action == "drop":
        return [f["subject"] for f in findings if f["check"] == "single_feature"]
    return []


def leaks(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings that are possible leaks (not notes on the audit itself)."""
    return [f for f in findings if f.get("leak", True)]


def without(feature_types: Mapping[str, Any], dropped: Sequence[str]) -> dict[str, Any]:
    """`feature_types` with the `dropped` features moved to its dropped columns, with why."""
    return {
        **feature_types,
        "columns": {k: v for k, v in feature_types["columns"].items() if k not in dropped},
        "dropped": {
            **feature_types["dropped"],
            **{name: "the leak audit: it alone all but decides the target" for name in dropped},
        },
    }


def _listed(index: pd.Index) -> str:
    shown = ", ".join(str(i) for i in index[:SHOWN_ROWS])
    return shown + (", …" if len(index) > SHOWN_ROWS else "")
