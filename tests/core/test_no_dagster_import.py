"""The core library never imports Dagster or the Dagster shell, not even lazily (docs/architecture.md).

One exception: the stage command (``rlhf_core/cli/stage.py``) imports ``dagster_pipes``, the
separate dependency-free Pipes package, lazily and only when a launcher started it under Pipes.
"""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "rlhf_core"
SHELL = ("dagster", "pipelines", "assets", "resources")
PIPES_ALLOWED = {("cli/stage.py", "dagster_pipes")}  # the only core import of anything Dagster


def test_core_modules_do_not_load_dagster():
    code = (
        "import importlib, pkgutil, sys, rlhf_core\n"
        "for m in pkgutil.walk_packages(rlhf_core.__path__, 'rlhf_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_core_source_imports_the_shell_anywhere():
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            found += [
                f"{path.relative_to(CORE)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0].startswith(SHELL) and (str(path.relative_to(CORE)), n) not in PIPES_ALLOWED
            ]
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module",
                "__import__",
            ):
                args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                found += [f"{path.relative_to(CORE)}:{node.lineno} {a}" for a in args if a.startswith(SHELL)]
    assert not found, found


def test_the_stage_command_imports_dagster_pipes_only_under_pipes():
    """Run without Pipes (no DAGSTER_PIPES_CONTEXT), the stage command loads nothing Dagster."""
    code = (
        "import sys, rlhf_core.cli.stage as s\n"
        "s.pipes_reporter('sft_model').__enter__()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DAGSTER_PIPES")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
