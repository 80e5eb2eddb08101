"""Each seed task's RL group runs end to end on its fixtures, through Dagster, with tiny random models
of the seeds' architectures: the policy (GPT-2, T5, Llama) trains a few steps, every partition is
sampled, scored with the task's reward components and its own evaluation metrics (docs/sources.md §7),
and ranked on the leaderboard.

qa_feedback and detox run whole, exactly as ``rlhf run TASK --profile tiny`` (configs/profiles/tiny/):
qa_feedback trains its four Longformer RMs (R1, R2, R3, holistic) and fine-grained PPO scores with them;
detox's Perspective is a web API, so a tiny RoBERTa classifier stands in for it. For the other tasks
tiny random RMs of the seeds' architectures stand in, loaded from a path: a DistilBERT ``rm_logit``
([WA]), two Llama ``rm_logit`` RMs (CRS), a GPT-NeoX ``rm_logit`` (the HHA RM).
"""
from __future__ import annotations

import math

import dagster as dg
import pandas as pd
import pytest
import torch
from transformers import (DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizer,
                          GPTNeoXConfig, GPTNeoXForSequenceClassification, LlamaConfig, LlamaForCausalLM,
                          LlamaForSequenceClassification)

from pipelines.runner import run_task
from resources import build_resources
from tests.conftest import gpt2_tokenizer
from tests import tiny_models
from tests.core.tiny_rl import one_thread
from tests.dagster.test_seed_tasks import header_overrides

SMALL = dict(vocab_size=None, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)


def _save(model, tok, path) -> str:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _llama(path, classifier: bool = False) -> str:
    tok = gpt2_tokenizer()
    eos = tok.eos_token_id
    cfg = LlamaConfig(**{**SMALL, "vocab_size": len(tok)}, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, num_labels=1)
    torch.manual_seed(1)
    return _save((LlamaForSequenceClassification if classifier else LlamaForCausalLM)(cfg), tok, path)


def _distilbert(path) -> str:
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-:;()\""))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    (path / "vocab").mkdir(parents=True)
    (path / "vocab" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = DistilBertTokenizer(vocab_file=str(path / "vocab" / "vocab.txt"))
    cfg = DistilBertConfig(vocab_size=len(tok), dim=16, n_layers=1, n_heads=2, hidden_dim=32, num_labels=1,
                           max_position_embeddings=512)
    torch.manual_seed(3)
    return _save(DistilBertForSequenceClassification(cfg), tok, path / "rm")


def _neox(path) -> str:
    tok = gpt2_tokenizer()
    cfg = GPTNeoXConfig(**{**SMALL, "vocab_size": len(tok)}, max_position_embeddings=1024, num_labels=1,
                        pad_token_id=tok.eos_token_id)
    torch.manual_seed(4)
    return _save(GPTNeoXForSequenceClassification(cfg), tok, path)


SHORT_PPO = "{steps: 2, prompts_per_rollout: 2, mini_batch_size: 2, ppo_epochs: 1, max_new_tokens: 6, " \
            "max_prompt_length: 48%s}"


def seed_overrides(task: str, tmp) -> list[str]:
    """Tiny models of the seed's architectures in place of its checkpoints, and a few short steps."""
    if task == "hh_rlhf":
        return [f"policy.init={{path: {tiny_models.gpt2(tmp / 'gpt2')}}}",
                f"annotation.scorers.rm={{scorer: rm_logit, params: {{model: {_distilbert(tmp / 'distilbert')}}}}}",
                f"policy.ppo={SHORT_PPO % ''}"]
    if task == "oasst_crs":
        return [f"policy.init={{path: {_llama(tmp / 'llama')}}}",
                f"annotation.scorers.ranking={{scorer: rm_logit, weight: 0.25, params: {{model: "
                f"{_llama(tmp / 'ranking', classifier=True)}}}}}",
                f"annotation.scorers.absolute={{scorer: rm_logit, weight: 0.75, params: {{model: "
                f"{_llama(tmp / 'absolute', classifier=True)}}}}}",
                f"policy.ppo={SHORT_PPO % ', grad_accum: 1'}",
                "evaluation.split=train"]  # the fixture's few trees leave the 5% val split empty
    assert task == "hh_pro"
    return [f"policy.init={{path: {_llama(tmp / 'llama')}}}",
            f"annotation.scorers.reward.params={{model: {_neox(tmp / 'neox')}}}",
            "policy.train={epochs: 1.0, batch_size: 4, lr: 1.0e-3, max_length: 64}"]


ALGORITHMS = {"hh_rlhf": ["ppo"], "detox": ["ppo", "fg_ppo"], "qa_feedback": ["fg_ppo"], "oasst_crs": ["ppo"],
              "hh_pro": ["pro"]}
# Each task's own evaluation table (docs/sources.md §7), as its YAML's evaluation.metrics name it.
EVALUATION_COLUMNS = {
    "hh_rlhf": ["distinct-1", "distinct-2"],
    "detox": ["avg_max_toxicity", "toxicity_probability", "perplexity", "dist-2", "dist-3"],
    "qa_feedback": ["rouge", "relevance_ratios", "factuality_ratios", "completeness_rewards", "rewards", "lengths",
                    "n_sub_sentences", "n_sentences"],
    "oasst_crs": ["ranking_logit", "ranking_logit_std", "absolute_logit", "absolute_logit_std", "crs_025",
                  "crs_025_std", "crs_0625", "crs_0625_std"],
    "hh_pro": ["avg_response_len", "distinct-1", "distinct-2", "distinct-3"],
}


TINY_PROFILE = {"qa_feedback", "detox"}  # run whole, as `rlhf run TASK --profile tiny` (README)


@pytest.mark.parametrize("task", sorted(ALGORITHMS))
def test_seed_rl_group_trains_samples_and_ranks_on_the_fixtures(task, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    art = tmp_path / "art"
    if task in TINY_PROFILE:  # data -> RMs -> RL -> the task's evaluation table, from the profile alone
        with one_thread():
            assert run_task(task, [], [], profile="tiny", resources=build_resources(str(art))) == 0
    else:
        data_overrides, _ = header_overrides(task)
        overrides = data_overrides + seed_overrides(task, tmp_path) + [
            "evaluation.generation={max_new_tokens: 6, do_sample: false, batch_size: 8}"]
        with one_thread():
            assert run_task(task, overrides, ["data", "annotation", "rl"], resources=build_resources(str(art))) == 0

    board = pd.read_csv(art / task / "leaderboard.csv")
    assert sorted(board["algorithm"]) == sorted(["sft", *ALGORITHMS[task]])
    assert board["reward"].notna().all() and board["n"].gt(0).all()
    table = board[EVALUATION_COLUMNS[task]]
    if task == "qa_feedback":  # a ratio over no segment (the tiny T5 may answer with nothing) is undefined
        judged = board["n_sub_sentences"].gt(0) & board["n_sentences"].gt(0)
        assert table[~judged][["relevance_ratios", "factuality_ratios"]].isna().all().all()
        table = table[judged]
        assert table[["relevance_ratios", "factuality_ratios"]].stack().between(0, 1).all()
    assert table.notna().all().all(), board.T
    print(f"{task} evaluation table:\n{board.head(1).T}")
    for algorithm in ALGORITHMS[task]:
        records = dg.DagsterInstance.get().fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey([task, "policy"]), asset_partitions=[algorithm]), limit=1)
        meta = {k: v.value for k, v in records.records[0].asset_materialization.metadata.items()}
        if algorithm == "pro":
            assert meta["steps"] >= 1 and math.isfinite(meta["final_loss"])
            continue
        assert meta["steps"] == 2 and meta["stop_reason"] == ""
        assert meta["semantics"] == {"ppo": "legacy_step", "fg_ppo": "fine_grained"}[algorithm]
        assert len(meta["reward_per_step"]) == 2 and all(math.isfinite(r) for r in meta["reward_per_step"])
        if task == "qa_feedback":  # greedy eval on the dev prompts after every step: the best weights are kept
            assert meta["best_step"] in (0, 1, 2) and math.isfinite(meta["best_eval_reward"])
