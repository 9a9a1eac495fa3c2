"""Models saved before the modules moved into packages still load: the old module names are
aliases of the new modules."""

from __future__ import annotations

import importlib
import pickle

import pytest

from model_trainer.models.ensemble import WeightedEnsemble
from model_trainer.moved_modules import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_module_name_is_the_moved_module(old, new):
    assert importlib.import_module(f"model_trainer.{old}") is importlib.import_module(
        f"model_trainer.{new}"
    )


def test_a_pickle_that_names_an_old_module_loads():
    saved = pickle.dumps(WeightedEnsemble([], []), protocol=0).replace(  # names are text
        b"model_trainer.models.ensemble", b"model_trainer.ensemble"
    )
    assert b"model_trainer.ensemble" in saved
    assert isinstance(pickle.loads(saved), WeightedEnsemble)


def test_names_that_never_existed_still_fail():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("model_trainer.no_such_module")
