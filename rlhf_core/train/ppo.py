"""The rollout-score-update engine for online RL on causal LMs and encoder-decoders
(docs/sources.md §6.1, §6.5-6.8).

Each step samples completions for a batch of prompts with our KV-cache sampler, scores them
with the task's reward function, computes per-token log-probs, values and reference log-probs,
shapes the rewards with KL, computes advantages, and runs PPO epochs. ``PPOConfig.semantics``
selects the update rule (see ``ppo_math``):

- ``fine_grained`` [FG]: every minibatch's gradient accumulates into one optimiser step per epoch;
- ``legacy_step`` (TRL 0.7): shuffled minibatches, one optimiser step per ``grad_accum`` of them;
- ``grpo`` / ``rloo``: no critic; one group-relative advantage per completion on every token,
  plus ``kl_coef`` times the k3 KL to the reference in the loss, stepped like ``legacy_step``.

The reward function is ``reward_fn(prompts, completions) -> list`` with, per completion, either
one float (on the last response token) or a list of ``(end_char, reward)`` segments, each on the
token that ends the segment ([FG]: the length of the policy tokenisation of ``completion[:end_char]``
minus one, clipped to the response; ``end_char`` None: the last token, EOS included). A
scalar-reward semantics (legacy_step, grpo, rloo) sums a completion's segment rewards.

Guards: a non-finite rollout or loss, or a rollout KL above ``kl_limit``, stops the run with
the reason and the step, and restores the last good checkpoint into the models. Checkpoints are
the training engine's (``Engine.save_state``, atomic: the ``COMPLETE`` marker is written last):
the weights, optimiser, scheduler and every process's RNG, plus the KL controller, running score
moments, early-stop count, history and, between PPO epochs, the rollout buffer
(``ppo_checkpoint``), so a killed run resumes mid-step and ends exactly as an uninterrupted one.
With ``eval_every`` set, greedy completions of the eval prompts are scored every that many
steps, the best mean reward's checkpoint is kept in ``work_dir/best`` and its weights are the
result ([FG]).

The policy and its critic train as one module (``ActorCritic``) on the shared training engine
(``loop.Engine``): its optimiser (AdamW without decay is Adam), schedule, clipping and precision,
and ``Engine.step`` for the optimiser steps the update picks; over several processes, see
``train_ppo``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from rlhf_core.config import ComputeConfig, TrainConfig
from rlhf_core.config.rl import PPOConfig
from rlhf_core.train import ppo_math as pm
from rlhf_core.train.loop import Engine, NotMainProcess, make_accelerator
from rlhf_core.train.offline import frozen_copy
from rlhf_core.train.ppo_checkpoint import CheckpointMixin
from rlhf_core.train.ppo_models import (
    BUFFER_KEYS,
    ActorCritic,
    ValueHead,
    ValueModel,
    model_inputs,
    response_logp,
    segment_positions,
)
from rlhf_core.train.sampler import SamplingSettings, Shard, sample

Segments = Sequence[tuple[int | None, float]]
RewardFn = Callable[[list[str], list[str]], Sequence[float | Segments]]
CRITIC_FREE = ("grpo", "rloo")
EVAL_BATCH = 64


class PPOStopped(RuntimeError):
    """Raised inside the engine when a guard trips; ``train_ppo`` turns it into ``stop_reason``."""


@dataclass
class PPOResult:
    history: list[dict[str, float]]
    steps: int  # completed rollouts
    resumed_from: int
    stop_reason: str | None
    best_eval_reward: float | None
    best_step: int | None
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds: generation, scoring, update


class _Engine(CheckpointMixin):
    def __init__(
        self,
        policy,
        tokenizer,
        prompts: list[str],
        reward_fn: RewardFn,
        cfg: PPOConfig,
        work_dir: Path,
        eval_prompts: list[str] | None,
        value_model,
        compute: ComputeConfig | None = None,
    ):
        if not prompts:
            raise ValueError("train_ppo needs at least one prompt")
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the policy tokenizer needs pad and eos tokens")
        self.policy, self.tok, self.prompts, self.reward_fn, self.cfg = policy, tokenizer, prompts, reward_fn, cfg
        self.work, self.eval_prompts = Path(work_dir), eval_prompts or []
        self.decoder_start = policy.config.decoder_start_token_id if policy.config.is_encoder_decoder else None
        device = next(policy.parameters()).device
        self.critic: nn.Module | None = None
        if cfg.semantics not in CRITIC_FREE:
            if cfg.critic == "separate":
                if value_model is None:
                    raise ValueError("critic: separate needs a value_model")
                self.critic = ValueModel(value_model).to(device)
            else:
                self.critic = ValueHead(policy.config.hidden_size, cfg.value_dropout).to(device)
        self.actor_critic = ActorCritic(policy, self.critic)
        self.engine = self._engine(compute)
        self.optimizer, self.scheduler = self.engine.optimizer, self.engine.scheduler
        self.device, self.world = self.engine.device, self.engine.accelerator.num_processes
        self.main = self.engine.accelerator.is_main_process
        # A LoRA policy's reference is its base with the adapter disabled ([CRS] ref_model=None);
        # any other policy gets a frozen copy.
        self.lora = hasattr(policy, "disable_adapter")
        self.ref = None if self.lora else frozen_copy(policy)
        adaptive = cfg.adaptive_kl and cfg.semantics not in CRITIC_FREE  # GRPO/RLOO keep a fixed KL weight
        self.kl_ctl = pm.AdaptiveKLController(cfg.kl_coef, cfg.kl_target if adaptive else None, cfg.kl_horizon)
        self.running = pm.RunningMoments()
        self.early = pm.KLEarlyStop(cfg.kl_stop_threshold or math.inf, cfg.kl_stop_count)
        self.history: list[dict[str, float]] = []
        self.timings = {"generation_s": 0.0, "scoring_s": 0.0, "update_s": 0.0}
        self.best: tuple[float, int] | None = None
        compiled = cfg.compiled_sampling and not policy.config.is_encoder_decoder
        self.settings = SamplingSettings(
            cfg.max_new_tokens, True, cfg.temperature, cfg.top_k, cfg.top_p, static=compiled, compile=compiled
        )

    def _engine(self, compute) -> Engine:
        """The shared training engine over the policy and its critic: Adam (AdamW without decay), the
        schedule ticked per optimiser step (constant, or [FG]'s warmup then linear decay to 0), clipping
        when ``max_grad_norm`` is set. Every process holds the whole rollout, so a step's rows need not split."""
        cfg = self.cfg
        rows = cfg.prompts_per_rollout * cfg.samples_per_prompt
        per_rollout = 1 if cfg.semantics == "fine_grained" else math.ceil(rows / (cfg.mini_batch_size * cfg.grad_accum))
        # Rollout widths vary, so a compiled training forward would recompile every step (sampling has its own).
        compute = compute or ComputeConfig()
        compute = dataclasses.replace(compute, micro_batch_size=None, compile=bool(compute.compile))
        world = make_accelerator(compute).num_processes  # the one the engine gets
        if rows % world:
            raise ValueError(
                f"a rollout of {rows} rows (prompts_per_rollout x samples_per_prompt) does not split "
                f"evenly over {world} processes"
            )
        if compute.lora is not None or compute.gradient_checkpointing:
            raise ValueError(
                "online RL takes a policy with its LoRA adapters already on it, and no gradient "
                "checkpointing: set compute.lora to null and compute.gradient_checkpointing to false"
            )
        # The step's micro-batches are picked by the update (Engine.step), so batch_size is only the rollout.
        train = TrainConfig(
            epochs=cfg.steps,
            batch_size=rows,
            lr=cfg.lr,
            lr_schedule=cfg.lr_schedule,
            max_grad_norm=math.inf if cfg.max_grad_norm is None else cfg.max_grad_norm,
            seed=cfg.seed,
        )
        engine = Engine(
            self.actor_critic,
            train,
            cfg.steps * cfg.ppo_epochs * per_rollout,
            compute,
            adam_eps=cfg.adam_eps,
            warmup_steps=cfg.warmup_steps,
        )
        if engine.sharded or engine.accelerator.state.deepspeed_plugin is not None:
            raise ValueError("online RL runs on one process or data-parallel (multi_gpu_ddp), not DeepSpeed or FSDP")
        return engine

    # ------------------------------------------------------------------ rollout

    def _encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-truncated, left-padded prompt ids and mask."""
        ids = [x[-self.cfg.max_prompt_length :] for x in self.tok(prompts, add_special_tokens=False)["input_ids"]]
        if any(len(x) == 0 for x in ids):
            raise ValueError("an empty prompt cannot be continued; drop it before PPO")
        width = max(len(x) for x in ids)
        out = torch.full((len(ids), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(ids), width, dtype=torch.long)
        for i, x in enumerate(ids):
            out[i, width - len(x) :] = torch.tensor(x)
            mask[i, width - len(x) :] = 1
        return out.to(self.device), mask.to(self.device)

    def _generate(self, prompts: list[str], settings: SamplingSettings, rows: slice | None = None):
        """Completions of ``prompts``, or with ``rows`` of this process's share of them, padded and
        sampled as one process would the whole batch (``Shard``)."""
        self.policy.eval()
        p_ids, p_mask = self._encode_prompts(prompts)
        shard = None
        if rows is not None:
            p_ids, p_mask, shard = p_ids[rows], p_mask[rows], Shard(rows.start, len(prompts))
        resp = sample(self.policy, p_ids, p_mask, settings, self.tok.eos_token_id, self.tok.pad_token_id, shard).clone()
        is_eos = resp == self.tok.eos_token_id
        # valid = up to and including the first EOS; rows without EOS use every generated token
        after_eos = (is_eos.long().cumsum(-1) - is_eos.long()) > 0
        mask = (~after_eos).float()
        lengths = mask.sum(-1).long()
        texts = [
            self.tok.decode(r[: int(n)][r[: int(n)] != self.tok.eos_token_id], skip_special_tokens=True)
            for r, n in zip(resp.cpu(), lengths.cpu())
        ]
        return p_ids, p_mask, resp, mask, texts

    def _score(self, prompts: list[str], texts: list[str], lengths: list[int], width: int) -> torch.Tensor:
        """Raw dense rewards (B, width) from the reward function's floats or segments."""
        out = self.reward_fn(prompts, texts)
        if len(out) != len(texts):
            raise ValueError(f"reward function returned {len(out)} rewards for {len(texts)} completions")
        positions, values = [], []
        for i, (item, text, n) in enumerate(zip(out, texts, lengths)):
            if isinstance(item, numbers.Real):
                positions.append([n - 1])
                values.append([float(item)])
                continue
            segs = list(item)
            ends = [None if e is None else int(e) for e, _ in segs]
            if any(e is not None and not 0 <= e <= len(text) for e in ends):
                raise ValueError(f"completion {i}: segment end outside the text (length {len(text)}): {ends}")
            at = iter(segment_positions(self.tok, text, [e for e in ends if e is not None]))
            positions.append([n - 1 if e is None else next(at) for e in ends])
            values.append([float(r) for _, r in segs])
        return pm.place_segment_rewards(positions, values, lengths, width).to(self.device)

    @torch.no_grad()
    def rollout(self, step: int) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        cfg = self.cfg
        t0 = time.perf_counter()
        prompts = self._prompt_batch(step)
        rows = self._share(len(prompts))
        p_ids, p_mask, resp, mask, texts = self._generate(prompts, self.settings, rows)
        t1 = time.perf_counter()
        lengths = mask.sum(-1).long().tolist()
        raw = self._score(prompts if rows is None else prompts[rows], texts, lengths, resp.shape[1])
        t2 = time.perf_counter()
        buf = {"prompt_ids": p_ids, "prompt_mask": p_mask, "response_ids": resp, "mask": mask}
        logp, values, ref_logp = self._score_tokens(buf)
        if rows is not None:  # every process holds the whole rollout: the statistics below are over the batch
            gather = self.engine.accelerator.gather
            buf, raw, logp, ref_logp = (
                {k: gather(v) for k, v in buf.items()},
                gather(raw),
                gather(logp),
                gather(ref_logp),
            )
            values = None if values is None else gather(values)
            mask = buf["mask"]
        logp, ref_logp = logp * mask, ref_logp * mask
        kl = (logp - ref_logp) * mask
        buf.update(logp=logp, ref_logp=ref_logp, raw_rewards=raw, kl=kl)
        self._check_finite(
            step, "rollout", logp=logp, ref_logp=ref_logp, rewards=raw, **({} if values is None else {"values": values})
        )
        rollout_kl = float(kl.sum(-1).mean())
        if cfg.kl_limit is not None and rollout_kl > cfg.kl_limit:
            raise PPOStopped(f"KL {rollout_kl:.4g} above the limit {cfg.kl_limit} at step {step}")
        scores = raw.sum(-1)
        if cfg.semantics == "fine_grained":
            penalized, _ = pm.fine_grained_rewards(raw, logp, ref_logp, mask, self.kl_ctl.value)
            adv, returns = pm.fine_grained_advantages(
                penalized, values * mask, mask, cfg.gamma, cfg.lam, cfg.whiten_rewards
            )
            values = values * mask
        elif cfg.semantics == "legacy_step":
            shaped = pm.legacy_transform_scores(
                scores, self.running, cfg.use_score_scaling, cfg.use_score_norm, cfg.score_clip
            )
            rewards, _ = pm.legacy_rewards(shaped, logp, ref_logp, mask, self.kl_ctl.value)
            values, adv, returns = pm.legacy_advantages(rewards, values, mask, cfg.gamma, cfg.lam, cfg.whiten_rewards)
        else:
            group = (
                pm.group_advantages(scores, cfg.samples_per_prompt)
                if cfg.semantics == "grpo"
                else pm.rloo_advantages(scores, cfg.samples_per_prompt)
            )
            adv, returns, values = group[:, None] * mask, torch.zeros_like(mask), torch.zeros_like(mask)
        buf.update(values=values, advantages=adv, returns=returns)
        stats = {
            "reward": float(scores.mean()),
            "kl": rollout_kl,
            "kl_coef": self.kl_ctl.value,
            "response_length": float(mask.sum(-1).mean()),
            "generation_s": t1 - t0,
            "scoring_s": t2 - t1,
        }
        self.timings["generation_s"] += t1 - t0
        self.timings["scoring_s"] += t2 - t1
        return buf, stats

    def _share(self, n: int) -> slice | None:
        """This process's rows of a rollout of ``n`` rows (None in a run of one process)."""
        if self.world == 1:
            return None
        per = n // self.world
        rank = self.engine.accelerator.process_index
        return slice(rank * per, (rank + 1) * per)

    def _score_tokens(self, buf) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Policy log-probs, values and reference log-probs of a rollout, a minibatch at a time."""
        parts = []
        for idx in torch.arange(buf["mask"].shape[0], device=self.device).split(self.cfg.mini_batch_size):
            logp, values = self.actor_critic(*self._inputs(buf, idx))
            batch, start = model_inputs(buf, idx, self.decoder_start)
            if self.lora:
                with self.policy.disable_adapter():
                    ref_logp, _ = response_logp(self.policy, batch, start, buf["response_ids"][idx], False)
            else:
                ref_logp, _ = response_logp(self.ref, batch, start, buf["response_ids"][idx], False)
            parts.append((logp, values, ref_logp))
        logp, values, ref_logp = zip(*parts)
        return torch.cat(logp), None if values[0] is None else torch.cat(values), torch.cat(ref_logp)

    def _prompt_batch(self, step: int) -> list[str]:
        """Deterministic shuffled passes over the prompts; each prompt repeated samples_per_prompt times."""
        n, per = len(self.prompts), self.cfg.prompts_per_rollout
        perms: dict[int, torch.Tensor] = {}
        picked = []
        for k in range((step - 1) * per, step * per):
            if k // n not in perms:
                gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + k // n)
                perms[k // n] = torch.randperm(n, generator=gen)
            picked.append(self.prompts[int(perms[k // n][k % n])])
        return [p for p in picked for _ in range(self.cfg.samples_per_prompt)]

    def _inputs(self, buf: dict[str, torch.Tensor], idx) -> tuple[dict, int, torch.Tensor]:
        """``ActorCritic``'s inputs for the buffer rows ``idx``."""
        batch, start = model_inputs(buf, idx, self.decoder_start)
        return batch, start, buf["response_ids"][idx]

    def _check_finite(self, step: int, where: str, **tensors: torch.Tensor) -> None:
        for name, t in tensors.items():
            if not bool(torch.isfinite(t).all()):
                raise PPOStopped(f"non-finite {name} in the {where} at step {step}")

    # ------------------------------------------------------------------ update

    def _minibatch_loss(self, buf, idx, rollout_mask) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        mask = buf["mask"][idx]
        logp, values = self.engine.model(*self._inputs(buf, idx))  # the prepared module: gradients sync
        pg, ratio = pm.policy_loss(logp, buf["logp"][idx], buf["advantages"][idx], mask, cfg.cliprange)
        if cfg.semantics in CRITIC_FREE:
            kl = pm.masked_mean(pm.k3_kl(logp, buf["ref_logp"][idx]), mask)
            return pg + self.kl_ctl.value * kl, {"loss_policy": float(pg.detach()), "loss_kl": float(kl.detach())}
        if cfg.semantics == "fine_grained":
            values = values * mask
        vf = pm.value_loss(values, buf["values"][idx], buf["returns"][idx], mask, cfg.cliprange_value)
        if cfg.semantics == "fine_grained":
            loss = (cfg.pg_coef * pg + cfg.vf_coef * vf) * pm.length_weight(mask, rollout_mask)
        else:
            loss = pg + cfg.vf_coef * vf
            if float(pm.masked_mean(ratio.detach(), mask)) > cfg.ratio_threshold:
                loss = loss * 0.0  # TRL 0.7 skips a minibatch whose mean ratio is too large
        return loss, {"loss_policy": float(pg.detach()), "loss_value": float(vf.detach())}

    def update_epoch(self, buf, step: int, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        self.policy.train()
        if self.critic is not None:
            self.critic.train()
        n = buf["mask"].shape[0]
        if cfg.semantics == "fine_grained":  # [FG]: rows in order, all minibatches -> one step
            order, per_step = torch.arange(n), n
        else:  # TRL 0.7: a fresh permutation per epoch, a step every grad_accum minibatches
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 101 + epoch)
            order, per_step = torch.randperm(n, generator=gen), cfg.mini_batch_size * cfg.grad_accum
        # TRL 0.7's accelerate divides each minibatch loss by the accumulation steps; [FG] sums them
        scale = 1.0 if cfg.semantics == "fine_grained" else 1.0 / cfg.grad_accum
        stats: list[dict[str, float]] = []
        for s in range(0, n, per_step):
            minibatches = [idx.to(self.device) for idx in order[s : s + per_step].split(cfg.mini_batch_size)]
            try:
                done, _ = self.engine.step(
                    minibatches, lambda idx: self._minibatch_loss(buf, idx, buf["mask"]), [scale] * len(minibatches)
                )
            except FloatingPointError:
                raise PPOStopped(f"non-finite loss at step {step}, PPO epoch {epoch + 1}") from None
            stats += done
        return {k: sum(d[k] for d in stats) / len(stats) for k in stats[0]}

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean summed raw reward of greedy completions of the eval prompts ([FG] eval/rewards)."""
        greedy = SamplingSettings(self.cfg.max_new_tokens, do_sample=False)
        totals = []
        for s in range(0, len(self.eval_prompts), EVAL_BATCH):
            prompts = self.eval_prompts[s : s + EVAL_BATCH]
            _, _, resp, mask, texts = self._generate(prompts, greedy)
            totals.append(self._score(prompts, texts, mask.sum(-1).long().tolist(), resp.shape[1]).sum(-1))
        return float(torch.cat(totals).mean())

    # ------------------------------------------------------------------ main loop

    def _maybe_eval(self, step_done: int) -> None:
        """Rank 0 evaluates; every process then saves a new best (a checkpoint is written by all)."""
        if not (self.cfg.eval_every and self.eval_prompts):
            return
        improved = False
        if self.main:
            reward = self.evaluate()
            self.history.append({"eval_step": step_done, "eval_reward": reward})
            improved = self.best is None or reward > self.best[0]
            self.best = (reward, step_done) if improved else self.best
        if self.world > 1:
            from accelerate.utils import broadcast_object_list

            improved, self.best = broadcast_object_list([improved, self.best])
        if improved:
            self.save("best", step_done, None)

    def run(self) -> PPOResult:
        cfg = self.cfg
        saved = self.checkpoint()
        self.engine.accelerator.wait_for_everyone()  # all have found it before the first checkpoint is written
        if saved is None:
            self._maybe_eval(0)
            self.save("checkpoint", 0, None)  # the first "last good" checkpoint
            start, current = 0, None
        else:
            state = self.load(saved)
            start, current = state["step"], state["current"]
        stop_reason = None
        try:
            for step in range(start + 1, cfg.steps + 1):
                keep = step % cfg.checkpoint_every == 0
                if current is not None:  # resume inside this step, after `epochs_done` PPO epochs
                    buf = {k: current[k].to(self.device) for k in BUFFER_KEYS}
                    first, stats = current["epochs_done"], current["stats"]
                    current = None
                else:
                    buf, stats = self.rollout(step)
                    first = 0
                    if keep:
                        self._save_mid(step, buf, 0, stats)
                t0 = time.perf_counter()
                for epoch in range(first, cfg.ppo_epochs):
                    stats.update(self.update_epoch(buf, step, epoch))
                    if keep and epoch + 1 < cfg.ppo_epochs:
                        self.timings["update_s"] += time.perf_counter() - t0
                        t0 = time.perf_counter()
                        self._save_mid(step, buf, epoch + 1, stats)
                self.timings["update_s"] += time.perf_counter() - t0
                # TRL 0.7 updates beta with the rollout KL after the step (n_steps = batch size)
                self.kl_ctl.update(stats["kl"], buf["mask"].shape[0])
                self.history.append({"step": step, **stats})
                early = cfg.semantics == "fine_grained" and self.early.update(stats["kl"])
                if cfg.eval_every and step % cfg.eval_every == 0:
                    self._maybe_eval(step)
                if keep or early or step == cfg.steps:
                    self.save("checkpoint", step, None)
                if early:
                    stop_reason = (
                        f"KL above {cfg.kl_stop_threshold} on {cfg.kl_stop_count} rollouts; "
                        f"early stop after step {step}"
                    )
                    break
        except PPOStopped as err:  # every process stops at the same point: the guards see the whole rollout
            stop_reason = str(err)
            self.engine.accelerator.wait_for_everyone()
            self.engine.load_state(self.checkpoint())  # back to the last good weights; the history stays
        if self.best is not None:  # [FG] keeps the weights with the best greedy eval reward
            self.engine.load_state(self.checkpoint("best"))
        self.policy.eval()
        done = max((h["step"] for h in self.history if "step" in h), default=0)
        return PPOResult(
            self.history,
            done,
            start,
            stop_reason,
            self.best[0] if self.best else None,
            self.best[1] if self.best else None,
            dict(self.timings),
        )


def as_trl_reward_func(reward_fn: RewardFn, name: str) -> Callable[..., list[float]]:
    """Our reward function as a TRL ``reward_funcs`` entry (GRPOTrainer, RLOOTrainer): one float
    per completion, segment rewards summed."""

    def reward(prompts: list[str], completions: list[str], **_: object) -> list[float]:
        out = reward_fn(list(prompts), list(completions))
        return [float(r) if isinstance(r, numbers.Real) else float(sum(v for _, v in r)) for r in out]

    reward.__name__ = name
    return reward


def train_ppo(
    policy,
    tokenizer,
    prompts: list[str],
    reward_fn: RewardFn,
    cfg: PPOConfig,
    work_dir: Path,
    eval_prompts: list[str] | None = None,
    value_model=None,
    compute: ComputeConfig | None = None,
) -> PPOResult:
    """Train ``policy`` in place by online RL; resumes from ``work_dir/checkpoint`` when present.

    ``value_model`` (any HF model with ``hidden_size``) is the trunk of the critic when
    ``cfg.critic == "separate"``; otherwise the critic is a value head on the policy trunk. A peft
    (LoRA) policy trains only its adapter and is its own reference with the adapter disabled.

    Under several processes (torchrun, ``accelerate launch``) each rolls out its share of the prompts,
    every process then holds the whole rollout (so whitening, score normalisation, the KL controller
    and group baselines are those of one process), and each optimiser step's minibatches are split
    over the processes (``Engine.step``). Rank 0 evaluates and saves; the others raise
    ``NotMainProcess`` at the end.
    """
    engine = _Engine(policy, tokenizer, prompts, reward_fn, cfg, work_dir, eval_prompts, value_model, compute)
    result = engine.run()
    if not engine.main:
        raise NotMainProcess(
            f"rank {engine.engine.accelerator.process_index}: training is over; rank 0 saves the model"
        )
    return result
