"""Errors a user can fix (a config, a selection, a missing input, a corrupted artifact), as opposed to bugs.

The command lines (``rlhf``, ``python -m rlhf_core.cli.stage``) print a ``UserError`` as one line,
``error: <message>``, and exit with status 2; anything else is a bug and keeps its traceback.
Ctrl-C (``KeyboardInterrupt``, or ``Interrupted`` with a message) prints ``interrupted`` and exits 130.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message says what and where."""


class MissingInputError(UserError, FileNotFoundError):
    """An input the run needs is absent: a source folder, a parent artifact, a file."""


class OfflineHubError(UserError, RuntimeError):
    """A hub model or dataset was asked for while the hub is unreachable (HF_HUB_OFFLINE or no network)."""


class CorruptArtifactError(UserError):
    """A stored artifact's file no longer matches the hash its ``meta.json`` recorded."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was running and how to resume (``interrupted: <message>``)."""
