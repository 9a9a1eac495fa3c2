"""Keep a normal run's output to what a user needs: progress, decisions, where things went."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from kedro.framework.hooks import hook_impl

from model_trainer.errors import find_model_trainer_error

logger = logging.getLogger("model_trainer")


class QuietRunHooks:
    @hook_impl
    def after_context_created(self, context: Any) -> None:
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
        for category in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        user_error = find_model_trainer_error(error)
        if user_error is not None:
            logger.error("%s", user_error)
