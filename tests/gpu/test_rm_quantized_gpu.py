"""[CRS]'s reward models as the seed trains them: LoRA adapters on an 8-bit base (bitsandbytes,
CUDA only; skipped without it). A tiny random Llama stands in for the seed's 7B base."""

import math

import pytest

from rlhf_core.rewards.base import build_scorer
from rlhf_core.stages.rm_kinds import base_model, rm_tokenizer
from tests.core.data.data_helpers import load_task
from tests.core.test_seed_reward_models import TINY_TRAIN, train_all

pytestmark = pytest.mark.gpu
TINY = "{path: data/fixtures/rlhflow/tiny-llama3-rm}"


def test_oasst_crs_rms_load_their_base_in_8bit_and_train_adapters_on_it(tmp_path):
    bnb = pytest.importorskip("bitsandbytes")
    cfg = load_task("oasst_crs", [f"reward_models.ranking.model={TINY}"])
    spec = cfg.reward_models["ranking"]
    assert spec.quantization == "8bit"  # the task's own setting, not an override
    model = base_model(spec, cfg, None, rm_tokenizer(spec, None), "sequence")
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules())

    _, refs, tables = train_all(
        "oasst_crs",
        [
            f"reward_models.{n}.{k}={v}"
            for n in ("ranking", "absolute")
            for k, v in (("model", TINY), ("train", TINY_TRAIN))
        ],
        tmp_path,
    )
    rows = tables["absolute_rm"].head(4)
    for name in ("ranking", "absolute"):
        assert (refs[name].dir / "adapter_base.json").exists()
        scores = build_scorer("reward_model", model=refs[name].path, progress=False)(
            rows["prompt"].tolist(), rows["completion"].tolist()
        )
        assert all(math.isfinite(s) for s in scores)
