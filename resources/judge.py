"""The ``judge`` resource: where a task's chat judge (evaluation.judge kind chat) is asked.

Its base URL and model are the task's ``evaluation.judge`` values unless RLHF_JUDGE_BASE_URL /
RLHF_JUDGE_MODEL are set (``build_resources`` reads them), which then win, as RLHF_LAUNCHER does over
``launcher.kind``. The API key is read from the environment variable the task names
(``api_key_env``, default OPENAI_API_KEY) only when the judge is asked: it is never a resource
setting, so it appears in no run config, log or metadata.
"""

from __future__ import annotations

import os

import dagster as dg

from rlhf_core.config import JudgeConfig
from rlhf_core.errors import UserError
from rlhf_core.stages.judge import Endpoint


class JudgeResource(dg.ConfigurableResource):
    base_url: str | None = None
    model: str | None = None

    def endpoint(self, cfg: JudgeConfig) -> Endpoint | None:
        """The chat judge's endpoint (None for a scorer judge)."""
        if cfg.kind != "chat":
            return None
        base_url, model = self.base_url or cfg.base_url, self.model or cfg.model
        if not base_url or not model:
            raise UserError(
                "evaluation.judge: a chat judge needs base_url and model (in the task config, or "
                "RLHF_JUDGE_BASE_URL and RLHF_JUDGE_MODEL)"
            )
        return Endpoint(base_url, model, os.environ.get(cfg.api_key_env, ""))
