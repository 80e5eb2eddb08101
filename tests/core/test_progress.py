"""Progress in a log file is plain lines, never carriage-return redraws; short work shows nothing."""

import io

from rlhf_core import progress


class LogFile(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_a_log_file_gets_whole_lines(monkeypatch):
    log = LogFile()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)  # every update is due
    bar = progress.progress_bar(range(3), desc="sft", total=3)
    for _ in bar:
        bar.set_postfix(loss="0.5", refresh=False)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and lines
    assert all(line.startswith("sft: ") for line in lines)
    assert lines[-1].startswith("sft: 3/3 it (100%)") and "loss=0.5" in lines[-1]


def test_short_work_prints_nothing(monkeypatch):
    log = LogFile()
    monkeypatch.setattr("sys.stderr", log)
    for _ in progress.progress_bar(range(3), desc="sft", total=3):
        pass
    assert log.getvalue() == ""


def test_a_bar_inside_a_stage_names_the_stage_first(monkeypatch):
    """SFT trains with the nll loss; its bar says ``sft_model train``, a policy's ``policy [nll]``."""
    log = LogFile()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    for label, desc, shown in [
        ("sft_model", "train", "sft_model train: "),
        ("policy [nll]", "nll", "policy [nll]: "),
        ("generations [dpo]", "generate", "generations [dpo] generate: "),
    ]:
        with progress.labelled(label):
            for _ in progress.progress_bar(range(2), desc=desc, total=2):
                pass
        assert log.getvalue().splitlines()[-1].startswith(shown + "2/2"), log.getvalue()
    for _ in progress.progress_bar(range(2), desc="score", total=2):  # outside a stage: as asked
        pass
    assert log.getvalue().splitlines()[-1].startswith("score: 2/2")
