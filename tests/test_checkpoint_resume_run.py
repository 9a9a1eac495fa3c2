"""A `kedro run` killed (SIGKILL) in the middle of its final fit, then run again with the same
command, resumes that fit from its last checkpoint and ships the model an uninterrupted run makes.

Everything goes through `kedro run --pipeline=train` in throwaway copies of the project: no mock,
no function-level interruption (tests/test_checkpoints.py covers those).

The run: LightGBM only, one search trial on a small sample (tuning.sample_rows), no early
stopping, and a portfolio configuration with a fixed 300 rounds (a list in conf, so it comes from
an environment written into the copy: `--params` cannot hold a list). Both final fits
(fit_evaluation_model on train + validation, then refit_on_all_rows on every row, the shipped
model) are checkpointed every 25 rounds on the 43k diamonds rows: about 5 s each here.

The kill lands in refit_on_all_rows, the fit of the shipped model: once the first checkpointed
fit has logged its end (its checkpoints are removed then, training.checkpoints.keep is false),
the first checkpoint file that appears belongs to the refit. The rerun repeats the cheap nodes
and the evaluation fit (the evaluation model is a MemoryDataset, so Kedro's `--from-nodes` cannot
start at the refit; the command is simply run again), finds the refit's checkpoints under the same
fingerprint and continues from the last one.

Exact equality is expected, not a close score: each chunk's rounds and seed depend on the round
count only, LightGBM runs single-threaded (n_jobs: 1 in the registry), and a checkpoint holds the
whole booster, so the resumed fit and the uninterrupted checkpointed fit (same `every`) build the
same trees. The reference is the same command, uninterrupted, in another fresh copy.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from tests.conftest import BENCH, copy_project, run_kedro
from tests.test_distributed import start_kedro

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("bench_data_is_beside_the_project")]

ROUNDS, EVERY = 300, 25
DIAMONDS = BENCH / "diamonds"
CHECKPOINTS = Path("data") / "06_models" / "checkpoints"  # training.checkpoints.folder (base)
ENVIRONMENT = "checkpoint_resume"
PARAMETERS = f"""\
model:
  algorithm: lightgbm
  algorithms:
    lightgbm:
      portfolio:
        - {{n_estimators: {ROUNDS}, learning_rate: 0.05, num_leaves: 31, min_child_samples: 20,
            subsample: 0.8, colsample_bytree: 0.8, reg_lambda: 1.0}}
validation:
  folds: 2
tuning:
  enabled: false
  sample_rows: 1000
  fold_jobs: 1
  ensemble:
    enabled: false
smoke_test:
  enabled: false
training:
  bagging:
    folds: 1   # one evaluation fit and one refit: the test kills the second
  early_stopping:
    enabled: false
  learning_curves: false
  permutation_repeats: 1
  permutation_max_rows: 200
"""
ARGS = (
    "run",
    "--pipeline=train",
    f"--env={ENVIRONMENT}",
    f"--params=dataset.path={DIAMONDS / 'train.csv'},dataset.target=price,"
    f"training.checkpoints.enabled=true,training.checkpoints.every={EVERY}",
)
FIT_LOG = re.compile(r"Checkpointed fit (\S+): (\d+) rounds, resumed from round (\d+)\.")


def prepared_copy(folder: Path) -> Path:
    copy = copy_project(folder)
    (copy / "conf" / ENVIRONMENT).mkdir()
    (copy / "conf" / ENVIRONMENT / "parameters.yml").write_text(PARAMETERS)
    return copy


def checkpoint_files(project: Path) -> list[Path]:
    return sorted((project / CHECKPOINTS).glob("*/round-*.joblib"))


def fits(log: str) -> list[tuple[str, int, int]]:
    """(fingerprint, rounds, resumed from) of each checkpointed fit, in the order they ended."""
    return [(name, int(rounds), int(start)) for name, rounds, start in FIT_LOG.findall(log)]


def shipped_model(project: Path):
    versions = sorted((project / "data" / "06_models" / "model.joblib").glob("*/model.joblib"))
    assert len(versions) == 1, versions  # the killed run never saved one
    return joblib.load(versions[0])


def kill_during_the_refit(project: Path) -> tuple[str, int]:
    """Start the run, SIGKILL its process group once the refit has saved a checkpoint; return the
    refit's fingerprint and the last round saved when it died."""
    run = start_kedro(project, *ARGS)
    output = project / "kedro.out"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and run.poll() is None:
            if fits(output.read_text()) and checkpoint_files(project):
                os.killpg(run.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if run.poll() is None and time.monotonic() >= deadline:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
    log = output.read_text()
    assert run.returncode == -signal.SIGKILL, (
        f"the run was not killed mid-fit (exit {run.returncode}): make the fit longer\n"
        + log[-3000:]
    )
    assert len(fits(log)) == 1, log[-3000:]  # the evaluation fit ended, the refit did not
    saved = checkpoint_files(project)  # as the killed process left them
    assert saved, log[-3000:]
    assert len({path.parent for path in saved}) == 1, saved
    last = max(int(path.stem.removeprefix("round-")) for path in saved)
    assert 0 < last < ROUNDS, saved
    return saved[0].parent.name, last


def test_a_killed_kedro_run_resumes_its_final_fit_and_ships_the_same_model(tmp_path):
    killed = prepared_copy(tmp_path / "killed")
    fingerprint, last_round = kill_during_the_refit(killed)

    rerun = run_kedro(killed, *ARGS, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = dict((name, (rounds, start)) for name, rounds, start in fits(rerun.stderr))
    # the evaluation fit had finished (checkpoints removed): it starts over; the refit resumes
    assert resumed.get(fingerprint) == (ROUNDS, last_round), (fingerprint, last_round, resumed)
    assert sorted(start for _, start in resumed.values()) == [0, last_round], resumed
    assert f"from its checkpoint at round {last_round} of {ROUNDS}" in rerun.stderr
    assert not [p for p in (killed / CHECKPOINTS).rglob("*") if p.is_file()]  # keep: false

    reference = prepared_copy(tmp_path / "reference")
    uninterrupted = run_kedro(reference, *ARGS, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    reference_fits = dict((name, (r, s)) for name, r, s in fits(uninterrupted.stderr))
    assert reference_fits.get(fingerprint) == (ROUNDS, 0), (fingerprint, reference_fits)

    rows = pd.read_csv(DIAMONDS / "test.csv").drop(columns=["price"])
    expected = shipped_model(reference).predict(rows)
    np.testing.assert_allclose(shipped_model(killed).predict(rows), expected, rtol=1e-12, atol=0)
