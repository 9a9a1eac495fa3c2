"""The leak audit (issue 17) on a real table with a known leak: AER's CreditCard, whose
`expenditure` (and `share`, expenditure over income) is spending on a card already granted; and
on the same applications without those columns (the bench's creditcard), where it must find
nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.table import leak_audit
from tests.conftest import BENCH, copy_project, run_kedro

CREDITCARD = Path(__file__).parent / "data" / "aer_creditcard.csv"
SETTINGS = {
    "action": "warn",
    "single_feature_score": 0.95,
    "duplicate_share_above": 0.01,
    "max_rows": 3000,
    "max_seconds": 5,
}


def audited(table: pd.DataFrame, target: str | None = "card", **settings) -> list[dict]:
    train = table.sample(frac=0.8, random_state=0)
    return leak_audit.audit(
        train,
        table.drop(train.index),
        target=target,
        task_type="classification",
        feature_columns=[c for c in table.columns if c != target],
        categorical=["owner", "selfemp"],
        time_column=settings.pop("time_column", None),
        group_column=settings.pop("group_column", None),
        settings={**SETTINGS, **settings},
    )


def test_finds_the_spending_columns_that_decide_the_card() -> None:
    findings = audited(pd.read_csv(CREDITCARD))
    flagged = {f["subject"] for f in findings if f["check"] == "single_feature"}
    assert flagged == {"expenditure", "share"}, findings
    assert all(f["score"] >= 0.95 for f in findings)
    assert "'expenditure' alone scores ROC AUC" in next(
        f["evidence"] for f in findings if f["subject"] == "expenditure"
    )


@pytest.mark.usefixtures("bench_data_is_beside_the_project")
def test_finds_nothing_in_the_same_applications_without_them() -> None:
    table = pd.read_csv(BENCH / "creditcard" / "train.csv")
    assert audited(table) == []


def test_test_rows_repeating_training_rows_are_named() -> None:
    table = pd.read_csv(CREDITCARD)
    train, test = table.iloc[:1000], table.iloc[1000:].copy()
    test.iloc[:30] = train.iloc[:30].to_numpy()  # 30 training rows copied into the test rows
    [finding] = leak_audit.repeated_rows(train, test, list(table.columns), share_above=0.01)
    assert finding["check"] == "duplicate_rows"
    assert finding["rows"] == list(range(1000, 1010))
    assert finding["evidence"].startswith("30 of 319 test rows (9.4%)")
    assert leak_audit.repeated_rows(train, test, list(table.columns), share_above=0.1) == []


def test_time_and_group_overlaps_are_named() -> None:
    train = pd.DataFrame({"day": [1, 2, 3], "shop": ["a", "b", "c"], "y": [0, 1, 0]})
    test = pd.DataFrame({"day": [3, 4], "shop": ["c", "d"], "y": [1, 0]})
    [late] = leak_audit.time_overlap(train, test, "day")
    assert late["rows"] == [0] and "no later than the latest training row (3)" in late["evidence"]
    [shared] = leak_audit.group_overlap(train, test, "shop")
    assert "1 groups of 'shop'" in shared["evidence"] and "(e.g. c)" in shared["evidence"]
    assert leak_audit.time_overlap(train, test.iloc[1:], "day") == []


def test_times_with_changing_utc_offsets_are_read_and_a_time_split_has_no_group_finding() -> None:
    """Summer time: the offsets change within the column, as the time-ordered split allows."""
    days = ["2024-03-01T00:00+01:00", "2024-03-20T00:00+01:00", "2024-04-01T00:00+02:00"]
    train = pd.DataFrame({"when": days[:2], "shop": ["a", "b"], "y": [0, 1]})
    test = pd.DataFrame({"when": days[2:], "shop": ["a"], "y": [1]})
    assert leak_audit.time_overlap(train, test, "when") == []
    findings = leak_audit.audit(
        train, test, target=None, task_type="clustering", feature_columns=["when", "shop"],
        categorical=["shop"], time_column="when", group_column="shop", settings=SETTINGS,
    )  # fmt: skip
    assert findings == [], "split by time, a group on both sides is by design"


def test_an_infinite_value_does_not_stop_the_audit() -> None:
    table = pd.read_csv(CREDITCARD)
    table.loc[:5, "income"] = float("inf")
    assert {f["subject"] for f in audited(table)} == {"expenditure", "share"}


def test_the_action_fails_drops_or_warns() -> None:
    findings = audited(pd.read_csv(CREDITCARD))
    with pytest.raises(DataValidationError, match="'expenditure' alone scores"):
        leak_audit.act(findings, "fail")
    assert sorted(leak_audit.act(findings, "drop")) == ["expenditure", "share"]
    assert leak_audit.act(findings, "warn") == []
    with pytest.raises(ConfigurationError, match="warn, drop, fail"):
        leak_audit.act(findings, "ignore")
    unfinished = audited(pd.read_csv(CREDITCARD), max_seconds=0)
    assert [f["check"] for f in unfinished] == ["single_feature_unfinished"]
    assert leak_audit.act(unfinished, "fail") == []  # a note on the audit, not a leak
    # what drop removes does not depend on the machine's speed: it checks every feature
    every = audited(pd.read_csv(CREDITCARD), max_seconds=0, action="drop")
    assert sorted(leak_audit.act(every, "drop")) == ["expenditure", "share"]


@pytest.mark.e2e
def test_a_train_run_reports_the_leak_and_fail_or_drop_act_on_it(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    data = f"dataset.path={CREDITCARD},dataset.target=card"
    run = run_kedro(project, "run", "--pipelines=train", "--env=test", f"--params={data}")
    assert run.returncode == 0, run.stderr[-3000:]
    audit = json.loads((project / "data" / "08_reporting" / "leak_audit.json").read_text())
    assert {f["subject"] for f in audit["findings"]} == {"expenditure", "share"}
    [decision] = [
        d
        for d in json.loads((project / "data" / "08_reporting" / "decisions.json").read_text())
        if d["decision"] == "leak audit"
    ]
    assert decision["choice"].startswith("2 possible leak(s)")
    report = (project / "data" / "08_reporting" / "report.html").read_text()
    assert 'class="finding leak"' in report
    with sqlite3.connect(project / "mlflow.db") as db:
        tags = dict(db.execute("SELECT key, value FROM tags WHERE key LIKE 'leak.%'").fetchall())
    assert list(tags) == ["leak.single_feature"]
    assert set(tags["leak.single_feature"].split(", ")) == {"expenditure", "share"}

    failed = run_kedro(
        project, "run", "--pipelines=train", "--env=test",
        f"--params={data},dataset.leak_audit.action=fail",
    )  # fmt: skip
    assert failed.returncode != 0
    assert "The leak audit found: " in failed.stderr
    assert "'expenditure' alone scores ROC AUC" in failed.stderr

    dropped = run_kedro(
        project, "run", "--pipelines=data_preparation", "--env=test",
        f"--params={data},dataset.leak_audit.action=drop",
    )  # fmt: skip
    assert dropped.returncode == 0, dropped.stderr[-3000:]
    types = json.loads((project / "data" / "04_feature" / "feature_types.json").read_text())
    assert {"expenditure", "share"} <= set(types["dropped"]) and "income" in types["columns"]
