"""Dense rewards for fine-grained PPO: per-segment rewards of named components (docs/sources.md §3.1, §6.1).

A scorer is *dense* when, besides its one float per completion, it has

    segment_rewards(prompts, completions) -> list[list[tuple[int, float]]]

giving each completion's segments as ``(end_char, reward)``: the segment ends at
``completion[:end_char]`` and its reward goes on the policy token that ends it (a sub-sentence
or sentence, [FG] R1/R2). Any other scorer is sequence-level: its value goes on the last
response token ([FG] R3 and the holistic RM), marked by ``end_char`` None. So any scorer can
drive fine-grained PPO.

    dense = DenseReward({"relevance": r1, "factuality": r2, "completeness": r3},
                        {"relevance": DenseTerm(0.3), "factuality": DenseTerm(0.5),
                         "completeness": DenseTerm(0.3, mean=-0.447, std=8.30)})
    dense(prompts, completions)   # [[(18, -0.3), (79, 0.3), (None, 0.41), ...], ...]

Each value enters as ``DenseTerm``: ``weight * (value - mean) / std + bias`` (``policy.fg_ppo.rewards``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlhf_core.config.rl import DenseTerm
from rlhf_core.data.segmentation import reward_segments
from rlhf_core.rewards.base import Scorer, register

Segment = tuple[int | None, float]  # (end character, or None for the last response token; reward)


def is_dense(scorer: Any) -> bool:
    return callable(getattr(scorer, "segment_rewards", None))


def component_segments(scorer: Scorer, prompts: list[str], completions: list[str]) -> list[list[Segment]]:
    """A dense scorer's segments, or a sequence-level scorer's value on the last response token."""
    out = (
        scorer.segment_rewards(prompts, completions)
        if is_dense(scorer)
        else [[(None, float(v))] for v in scorer(prompts, completions)]
    )
    if len(out) != len(completions):
        raise ValueError(f"scorer {scorer.name!r} returned {len(out)} rows for {len(completions)} completions")
    return out


class DenseReward:
    """The per-segment reward of fine-grained PPO: every named component's segments, weighted.

    Segments of different components that end on the same token add up there (R1 + R2 + R3).
    """

    name = "dense_reward"

    def __init__(self, scorers: Mapping[str, Scorer], terms: Mapping[str, DenseTerm]):
        missing = sorted(set(terms) - set(scorers))
        if missing:
            raise KeyError(f"no scorer for dense reward component(s) {missing}; have {sorted(scorers)}")
        if not terms:
            raise ValueError("a dense reward needs at least one component")
        self.scorers, self.terms = {k: scorers[k] for k in terms}, dict(terms)

    def __call__(self, prompts: list[str], completions: list[str]) -> list[list[Segment]]:
        out: list[list[Segment]] = [[] for _ in completions]
        for name, term in self.terms.items():
            for row, segments in zip(out, component_segments(self.scorers[name], prompts, completions)):
                row.extend((end, term(value)) for end, value in segments)
        return out


@register("sentence_delta")
class SentenceDeltaScorer:
    """[FG] fine-grained detoxification (docs/sources.md §1.1): sentence j's reward is the change of a
    sequence scorer from the prefix ending at sentence j-1 to the prefix ending at sentence j.

    With Perspective toxicity and weight -1 that is ``-(tox(y_<=j) - tox(y_<j))``; the empty prefix
    scores 0, so a completion's segment rewards sum to the base score of its last sentence's prefix.
    As a plain scorer it is the base scorer of the whole completion (the holistic reward).

        {scorer: sentence_delta, params: {base: perspective, qps: 1.0}, weight: -1.0}
    """

    name = "sentence_delta"
    wraps = "base"  # the parameter naming the scorer it wraps: its code is part of this one's (scorer_code)

    def __init__(self, base: str, **params: Any):
        from rlhf_core.rewards.base import Needs, build_scorer, scorer_needs

        if scorer_needs(base) != Needs():
            raise ValueError(f"sentence_delta: base scorer {base!r} needs a prepared state, which it cannot wrap")
        self.base = build_scorer(base, **params)
        self.version = f"1+{base}+{self.base.version}"

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return self.base(prompts, completions)

    def segment_rewards(self, prompts: list[str], completions: list[str]) -> list[list[tuple[int, float]]]:
        ends = [[end for _, end in reward_segments(c, "sentence")] for c in completions]
        flat = [(p, c[:e]) for p, c, es in zip(prompts, completions, ends) for e in es]
        scores = iter(self.base([p for p, _ in flat], [t for _, t in flat]) if flat else [])
        out = []
        for es in ends:
            prefix = [float(next(scores)) for _ in es]
            out.append([(e, s - before) for e, s, before in zip(es, prefix, [0.0] + prefix[:-1])])
        return out
