"""Task configs are strict: unknown keys and bad values fail with the key's path."""

from pathlib import Path

import pytest

from rlhf_core.config import ConfigError, load_config, task_config_path, tasks_dir
from rlhf_core.stages.trials import Trial, variant


def test_every_task_config_loads():
    for path in tasks_dir().glob("*.yaml"):
        assert load_config(path).task == path.stem


def test_overrides_are_typed_and_applied():
    cfg = load_config(task_config_path("demo"), ["sft.train.epochs=2", "policy.algorithms=[nll, dpo]"])
    assert cfg.sft.train.epochs == 2.0
    assert cfg.policy.algorithms == ["nll", "dpo"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("sft.train.epoch=2", "sft.train: unknown key"),
        ("sft.train.batch_size=many", "sft.train.batch_size: expected int"),
        ("reward_models.bt.init=random", "reward_models.bt.init: expected one of"),
        ("nonsense", "must look like key.path=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(task_config_path("demo"), [override])


def test_hub_models_need_a_pinned_revision():
    with pytest.raises(ConfigError, match="pinned revision"):
        load_config(task_config_path("demo"), ["sft.model={hub_id: gpt2}"])


def test_policy_trains_on_the_annotated_dataset_only():
    with pytest.raises(ConfigError, match="annotation.data"):
        load_config(task_config_path("demo"), ["policy.data=sft_data"])


def test_fg_ppo_starts_from_the_fine_grained_defaults():
    cfg = load_config(task_config_path("demo")).policy.fg_ppo.settings
    # [FG] fine_grained_config.yml, with the demo's budget and sampling written over it
    assert (cfg.semantics, cfg.kl_coef, cfg.adaptive_kl, cfg.gamma, cfg.lam, cfg.vf_coef) == (
        "fine_grained",
        0.3,
        False,
        1.0,
        0.95,
        1.0,
    )
    assert (cfg.whiten_rewards, cfg.kl_stop_threshold, cfg.ppo_epochs, cfg.steps) == (True, 10.0, 4, 6)


@pytest.mark.parametrize(
    "override, message",
    [
        ("policy.fg_ppo.rewards={gold_rm: {weight: 1.0}}", "fg_ppo.rewards \\['gold_rm'\\] are not annotation.scorers"),
        ("policy.fg_ppo.ppo.semantics=legacy_step", "fg_ppo is always fine_grained"),
        ("policy.fg_ppo.ppo.critic=separate", "critic separate needs a value_model"),
        ("policy.fg_ppo.rewards.rel_rm.std=0", "std must be positive"),
        ("policy.init={path: somewhere}", "start from the sft stage or from policy.init, exactly one"),
        ("policy.pairs=null", "policy.algorithms \\['dpo', 'pro'\\] need policy.pairs"),
    ],
)
def test_policy_sections_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(task_config_path("demo"), [override])


def test_a_lol_kl_needs_its_own_beta_and_validation_a_reward_column():
    with pytest.raises(ConfigError, match=r"a_lol_kl needs a kl_beta > 0, got \[0.0\]"):
        load_config(task_config_path("comet"), ["policy.algorithms=[a_lol, a_lol_kl]"])
    cfg = load_config(
        task_config_path("comet"),
        ["policy.algorithms=[a_lol, a_lol_kl]", "policy.overrides={a_lol_kl: {kl_beta: 0.1}}"],
    )
    assert (variant(cfg, Trial("a_lol_kl")).policy.kl_beta, variant(cfg, Trial("a_lol")).policy.kl_beta) == (0.1, 0.0)
    with pytest.raises(ConfigError, match="policy.validation.metric: unknown name 'meteor'"):
        load_config(task_config_path("comet"), ["policy.validation.metric=meteor"])


def test_a_revision_that_is_not_a_commit_sha_is_flagged(caplog):
    from rlhf_core.config import warn_if_unpinned

    warn_if_unpinned("org/model", "0123456789abcdef0123456789abcdef01234567")
    assert not caplog.records
    warn_if_unpinned("org/model", "main")
    assert "org/model@main" in caplog.text and "not a commit sha" in caplog.text


def test_numbers_read_as_users_write_them(tmp_path):
    # YAML 1.1 reads 5e-4 and 1e3 as strings; a number field takes them, a string field keeps them.
    cfg = load_config(
        task_config_path("demo"), ["policy.train.lr=5e-4", "sft.train.batch_size=1e1", "evaluation.split=1e3"]
    )
    assert cfg.policy.train.lr == 0.0005 and cfg.sft.train.batch_size == 10 and cfg.evaluation.split == "1e3"
    # a YAML file's number: the appended section replaces the demo's own (the last key wins)
    (tmp_path / "demo.yaml").write_text(task_config_path("demo").read_text() + "\nreference_value: {lr: 2e-5}\n")
    assert load_config(tmp_path / "demo.yaml").reference_value.lr == 2e-5
    with pytest.raises(ConfigError, match="sft.train.batch_size: expected int, got '1.5e0'"):
        load_config(task_config_path("demo"), ["sft.train.batch_size=1.5e0"])
    with pytest.raises(ConfigError, match="policy.train.lr: expected a number, got 'fast'"):
        load_config(task_config_path("demo"), ["policy.train.lr=fast"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("reward_models.armo.model={path: x}", "precomputed_embeddings is an armo setting, without init or model"),
        (
            "reward_models.armo.pairs=pair_pm",
            "dataset 'pair_pm' must be an embedding table of builder 'armorm_pair_embeddings'",
        ),
        ("reward_bench.embeddings=null", "'armo' scores embeddings; name the RewardBench embedding dataset"),
        (
            "reward_models.bt.response_template='A: {response}'",
            "chat_template renders prompt and response of a one-logit RM",
        ),
        ("reward_models.bt.gating_steps=10", "gating_steps is a positive number of armo stage-2 steps"),
        ("reward_models.pair_pm.pad_token=PAD", "pad_token resizes the embeddings of a fully trained one-logit RM"),
    ],
)
def test_rlhflow_reward_model_sections_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(task_config_path("rlhflow"), [override])


@pytest.mark.parametrize(
    "override, message",
    [
        ("sft.train.epochs=-1", "sft.train.epochs: must be positive, got -1"),
        ("sft.train.batch_size=0", "sft.train.batch_size: must be positive, got 0"),
        ("policy.ppo.steps=0", "policy.ppo.steps: must be positive, got 0"),
        ("tokenizer.vocab_size=-5", "tokenizer.vocab_size: must be positive, got -5"),
        ("policy.algorithms=[nll, foo]", "algorithms: unknown ['foo']; known: ['nll',"),
        ("annotation.scorers.gold.scorer=golden", "annotation.scorers.gold.scorer: unknown name 'golden'; known: ["),
        ("sources.feedback.loader=feedbak", "sources.feedback.loader: unknown name 'feedbak'"),
        ("datasets.clean_feedback.builder=nope", "datasets.clean_feedback.builder: unknown name 'nope'"),
        ("evaluation.rank_by=glod", "evaluation.rank_by: unknown name 'glod'; known: ['distinct', 'diversity',"),
    ],
)
def test_non_positive_sizes_and_unknown_names_fail_when_the_config_loads(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(task_config_path("demo"), [override])
    assert str(err.value).startswith("demo.yaml: ") and message in str(err.value), str(err.value)


def test_the_names_a_config_may_use_are_exactly_what_the_registries_hold():
    """The config check reads the registered names from source; importing the registries agrees."""
    from rlhf_core.config import LOADERS, METRICS, SCORERS
    from rlhf_core.data import registry
    from rlhf_core.eval import registry as eval_registry
    from rlhf_core.registry import declared_names
    from rlhf_core.rewards import base

    assert (LOADERS, SCORERS, METRICS) == (
        registry.LOADERS.package,
        base.SCORERS.package,
        eval_registry.METRICS.package,
    )

    import inspect

    import rlhf_core

    core = Path(rlhf_core.__file__).parent

    def defined_in(reg, package: str) -> set[str]:  # but the entries a test registers (test_comet.py)
        return {n for n in reg.names() if Path(inspect.getfile(reg.get(n))).resolve().is_relative_to(core)}

    assert declared_names(LOADERS, "loader") == defined_in(registry.LOADERS, LOADERS)
    assert declared_names(LOADERS, "builder") == defined_in(registry.BUILDERS, LOADERS)
    assert declared_names(SCORERS, "register") == defined_in(base.SCORERS, SCORERS)
    assert declared_names(METRICS, "register") == defined_in(eval_registry.METRICS, METRICS)


def test_the_reward_model_kinds_a_config_may_name_are_the_registrys_entries():
    import typing

    from rlhf_core.config import RewardModelSpec
    from rlhf_core.stages.rm_kinds import RM_KINDS

    assert set(typing.get_args(typing.get_type_hints(RewardModelSpec)["kind"])) == set(RM_KINDS.names())


def test_a_per_task_profile_overlays_its_task_and_replaces_marked_mappings_whole():
    cfg = load_config(task_config_path("detox"), profile="tiny")
    # `_replace: true`: the tiny path instead of the hub id (merged, the two would both be set and fail)
    assert (cfg.policy.init.hub_id, cfg.policy.init.path) == (None, "data/fixtures/tiny_models/gpt2")
    assert cfg.annotation.scorers["toxicity"].params == {
        "base": "fluency",
        "model": "data/fixtures/tiny_models/roberta_classifier",
    }
    assert cfg.policy.ppo.cliprange == 0.2 and cfg.policy.ppo.steps == 2  # unmarked mappings still merge
    assert cfg.evaluation.metrics["dist"].params == {"n": [2, 3], "per": "prompt"}  # untouched: the task's own
    # --set wins over the profile
    assert load_config(task_config_path("detox"), ["policy.ppo.steps=3"], profile="tiny").policy.ppo.steps == 3
    with pytest.raises(ConfigError, match=r"tiny/demo.yaml: no such profile; known: \[.*'detox'"):
        load_config(task_config_path("demo"), profile="tiny")  # the demo is tiny already
