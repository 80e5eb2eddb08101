"""Config of human feedback collection: which generations go to the annotation tool, and where labels land.

``feedback.collections`` maps a name to the policies whose generations form each item's answers and the
seed interface they are shown in (docs/sources.md §8). The name is also the table the collected labels
become, so a dataset or a reward model of the task reads it like any other table:
``datasets.human_rel_labels: {builder: fg_token_labels, inputs: [qa_human]}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rlhf_core.config.parse import ConfigError

N_POLICIES = {"fg": 4, "crs_ranking": 3}


@dataclass(frozen=True)
class FeedbackCollectionConfig:
    """``fg``: [FG]'s fine-grained and comparison pages over 4 answers; ``crs_ranking``: 3 answers ranked."""

    interface: Literal["fg", "crs_ranking"]
    policies: list[str]  # whose ``generations`` partitions answer each prompt (4 for fg, 3 for crs_ranking)
    sample: int | None = None  # push a seeded sample of this many prompts (None: every prompt)
    annotators_per_item: int = 1  # the project's overlap: how many people see each item
    split: str = "train"  # the split the collected rows belong to

    def __post_init__(self) -> None:
        if len(self.policies) != N_POLICIES[self.interface] or len(set(self.policies)) != len(self.policies):
            raise ConfigError(
                f"policies: {self.interface} needs {N_POLICIES[self.interface]} distinct policies, got {self.policies}"
            )
        if self.sample is not None and self.sample < 1:
            raise ConfigError(f"sample: expected a positive count, got {self.sample}")


@dataclass(frozen=True)
class FeedbackConfig:
    """The annotation tool (Label Studio on 127.0.0.1 by default) and the folder of collected batches.

    The API token is read from the environment variable named by ``token_env`` when the tool is called,
    never from a file, and never written anywhere.
    """

    collections: dict[str, FeedbackCollectionConfig] = field(default_factory=dict)
    url: str = "http://127.0.0.1:8080"
    token_env: str = "LABEL_STUDIO_API_KEY"
    folder: str = "data/feedback"  # batches land in <folder>/<task>/<collection>/<UTC time>/
    poll_seconds: int = 60  # how often the sensor asks the tool for new annotations


@dataclass(frozen=True)
class HumanRankingsConfig:
    """Exported human ranking studies (docs/sources.md §7.4): Argilla files per group, or plain JSONL.

    ``argilla``: ``groups`` maps a group name to ``{file, keys}``, ``keys`` being the entry of ``keys_file``
    (the seed's ``all_keys.json``) that maps the group's prompts to the models behind each response.
    ``jsonl``: ``files`` lists files of ``{prompt, annotator, ranking[, group]}`` lines.
    """

    path: str
    format: Literal["argilla", "jsonl"]
    groups: dict[str, dict[str, str]] = field(default_factory=dict)
    keys_file: str | None = None
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.format == "argilla" and (not self.groups or self.keys_file is None):
            raise ConfigError("argilla: give groups ({name: {file, keys}}) and keys_file")
        if self.format == "jsonl" and not self.files:
            raise ConfigError("jsonl: give files")
