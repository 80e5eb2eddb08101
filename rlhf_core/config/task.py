"""The task config: every section of ``configs/tasks/<task>.yaml`` and the checks across them.

Unknown keys, missing required keys and wrongly typed values fail with the key's path
(``demo.yaml: sft.train.epochs: expected a number, got 'two'``). Every stage section is
optional: a task that lacks one simply does not build that stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rlhf_core.config.annotation import AnnotationConfig
from rlhf_core.config.data import DatasetConfig, SourceConfig, TokenizerConfig
from rlhf_core.config.evaluation import EvaluationConfig
from rlhf_core.config.feedback import FeedbackConfig, HumanRankingsConfig
from rlhf_core.config.launch import LauncherConfig
from rlhf_core.config.parse import ConfigError
from rlhf_core.config.rl import PolicyConfig, ReferenceValueConfig
from rlhf_core.config.rm import RewardBenchConfig, RewardModelEvalConfig, RewardModelSpec
from rlhf_core.config.train import ComputeConfig, SFTConfig
from rlhf_core.config.world import DemoWorldConfig, GoldConfig
from rlhf_core.registry import declared_names

# The packages whose modules register loaders and builders, and scorers (read, not imported, here).
LOADERS, SCORERS, METRICS = "rlhf_core.data.loaders", "rlhf_core.rewards", "rlhf_core.eval.measures"


@dataclass(frozen=True)
class TaskConfig:
    task: str
    seed: int
    seeds: list[int] = field(default_factory=list)  # training seeds of the policies (stages/trials.py)
    world: DemoWorldConfig | None = None
    gold: GoldConfig | None = None
    tokenizer: TokenizerConfig | None = None
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    datasets: dict[str, DatasetConfig] = field(default_factory=dict)
    annotation: AnnotationConfig | None = None
    sft: SFTConfig | None = None
    reward_models: dict[str, RewardModelSpec] = field(default_factory=dict)
    reward_model_eval: RewardModelEvalConfig | None = None
    reward_bench: RewardBenchConfig | None = None
    reference_value: ReferenceValueConfig | None = None
    policy: PolicyConfig | None = None
    evaluation: EvaluationConfig | None = None
    feedback: FeedbackConfig | None = None  # human labels through the annotation tool (``config.feedback``)
    human_rankings: HumanRankingsConfig | None = None  # an exported human ranking study, scored
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)  # where stages run; in no key

    def _check_embedding_tables(self, where: str, builders: dict[str, str]) -> None:
        """The datasets exist and come from the given embedding builders (that they share one
        backbone is checked when the tables meet: ``stages.rm_kinds.check_same_backbone``)."""
        for name, builder in builders.items():
            if name not in self.datasets or self.datasets[name].builder != builder:
                raise ConfigError(f"{where}: dataset {name!r} must be an embedding table of builder {builder!r}")

    def _check_names(self) -> None:
        """Every loader, builder, scorer and ranking metric the config names exists, so a typo fails
        when the config loads, not steps later (algorithm names: ``PolicyConfig``)."""
        named = [(f"sources.{n}.loader", s.loader, declared_names(LOADERS, "loader")) for n, s in self.sources.items()]
        named += [
            (f"datasets.{n}.builder", d.builder, declared_names(LOADERS, "builder")) for n, d in self.datasets.items()
        ]
        scorers = self.annotation.scorers if self.annotation else {}
        named += [
            (f"annotation.scorers.{n}.scorer", s.scorer, declared_names(SCORERS, "register"))
            for n, s in scorers.items()
        ]
        metrics = self.evaluation.metrics if self.evaluation else {}
        named += [
            (f"evaluation.metrics.{n}.metric", m.metric, declared_names(METRICS, "register"))
            for n, m in metrics.items()
        ]
        if self.evaluation is not None:  # the leaderboard's columns: R, each component, each metric's columns
            rank_by, metrics = self.evaluation.rank_by, self.evaluation.metrics
            by_metric = (
                {rank_by} if any(rank_by.startswith(m) for m in metrics) else set()
            )  # "distinct" -> "distinct-2"
            named.append(("evaluation.rank_by", rank_by, {"reward", *scorers, *metrics, *by_metric}))
        validation = self.policy.validation if self.policy else None
        if validation is not None:  # a column of R's scores: a component or R itself
            named.append(("policy.validation.metric", validation.metric, {"reward", *scorers}))
        for where, name, known in named:
            if name not in known:
                raise ConfigError(f"{where}: unknown name {name!r}; known: {sorted(known)}")

    def __post_init__(self) -> None:
        self._check_names()
        ann, policy = self.annotation, self.policy
        rm_refs = [s.partition for s in (ann.scorers.values() if ann else ()) if s.model_asset == "reward_model"]
        for name in rm_refs:
            if name not in self.reward_models:
                raise ConfigError(
                    f"annotation: reward model {name!r} is not declared in reward_models ({sorted(self.reward_models)})"
                )
        for name, spec in self.reward_models.items():
            if spec.precomputed_embeddings:
                self._check_embedding_tables(
                    f"reward_models.{name}",
                    {spec.data: "armorm_objective_embeddings", spec.pairs: "armorm_pair_embeddings"},
                )
        if self.reward_bench is not None:
            for name in self.reward_bench.models:
                if name not in self.reward_models or self.reward_models[name].kind in ("fg_token",):
                    raise ConfigError(
                        f"reward_bench.models: {name!r} is not a declared pairwise or scalar reward model"
                    )
                spec = self.reward_models[name]
                if spec.precomputed_embeddings:  # scored on RewardBench's embeddings by the same backbone
                    if self.reward_bench.embeddings is None:
                        raise ConfigError(
                            f"reward_bench: {name!r} scores embeddings; name the RewardBench "
                            "embedding dataset in reward_bench.embeddings"
                        )
                    self._check_embedding_tables(
                        "reward_bench",
                        {spec.pairs: "armorm_pair_embeddings", self.reward_bench.embeddings: "armorm_pair_embeddings"},
                    )
        if self.reward_models and self.sft is None and any(s.init for s in self.reward_models.values()):
            raise ConfigError("reward_models: init sft / scratch needs an sft section")
        if ann is not None and ann.data is None and ann.incoming is None and policy is None:
            raise ConfigError("annotation: give data, incoming, or both (or a policy that scores with its scorers)")
        if policy is None:
            return
        if ann is None:
            raise ConfigError("policy: online RL and the evaluation score with annotation.scorers; add them")
        # Offline RL learns from R, the task's annotated reward of the policy's rows.
        if policy.data is not None and (ann is None or ann.data != policy.data):
            raise ConfigError(
                f"policy.data {policy.data!r} must be the annotated dataset (annotation.data): "
                "offline RL trains on its rewards"
            )
        if (self.sft is None) == (policy.init is None):
            raise ConfigError("policy: start from the sft stage or from policy.init, exactly one")
        if policy.prompts is None and self.sft is None:
            raise ConfigError("policy.prompts: name the prompts dataset (there is no sft.data to default to)")
        unknown = sorted(set(policy.fg_ppo.rewards) - set(ann.scorers)) if policy.fg_ppo else []
        if unknown:
            raise ConfigError(f"policy.fg_ppo.rewards {unknown} are not annotation.scorers components")
        judge = self.evaluation.judge if self.evaluation else None
        unknown = sorted({judge.scorer, *judge.agreement} - {None} - set(ann.scorers)) if judge else []
        if unknown:
            raise ConfigError(f"evaluation.judge: {unknown} are not annotation.scorers components")
