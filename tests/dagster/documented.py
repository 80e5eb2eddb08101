"""The ``rlhf`` commands the README, docs/ and the task YAML headers show, as a user would type them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from rlhf_core.config import tasks_dir

REPO = Path(__file__).resolve().parents[2]
# an environment assignment or two (RLHF_LAUNCHER=subprocess), then the command
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+ )*(?:\.venv/bin/)?rlhf (?:run|status|tasks|leaderboard)\b")


def documented() -> list[tuple[str, list[str]]]:
    """``(where, argv after "rlhf")`` of every command line in the docs, ``\\`` continuations joined
    (environment assignments before it dropped)."""
    found = []
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(tasks_dir().glob("*.yaml"))]
    for path in files:
        lines = [
            line.lstrip("#").strip() if path.suffix == ".yaml" else line.strip()
            for line in path.read_text().splitlines()
        ]
        for i, line in enumerate(lines):
            if not COMMAND.match(line):
                continue
            parts = [line]
            while parts[-1].endswith("\\"):
                parts[-1] = parts[-1][:-1]
                i += 1
                parts.append(lines[i])
            argv = shlex.split(" ".join(parts), comments=True)
            start = next(n for n, arg in enumerate(argv) if arg.endswith("rlhf"))
            found.append((f"{path.relative_to(REPO)}:{i + 1}", argv[start + 1 :]))
    return found


COMMANDS = documented()


def shown(text: str) -> list[str]:
    """The documented command that reads ``rlhf <text>`` (argv after "rlhf"); it must be in the docs."""
    matches = [argv for _, argv in COMMANDS if " ".join(argv) == text]
    assert matches, f"`rlhf {text}` is no longer in the README, docs/ or a task YAML header"
    return matches[0]
