"""The core library never imports Dagster (docs/architecture.md)."""
import subprocess
import sys


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
