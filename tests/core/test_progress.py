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
