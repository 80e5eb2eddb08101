"""Incoming files: day folders, fingerprints, and rows read back with bad lines quarantined."""

import json

from rlhf_core.rewards.incoming import content_fingerprint, day_folders, fingerprint, read_day


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))


def test_only_date_named_folders_are_days(tmp_path):
    (tmp_path / "2026-11-22").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "2026-11-23.jsonl").write_text("")
    assert list(day_folders(tmp_path)) == ["2026-11-22"]
    assert day_folders(tmp_path / "missing") == {}


def test_rows_get_ids_and_bad_lines_are_quarantined_with_file_line_and_field(tmp_path):
    day = tmp_path / "2026-11-22"
    write_lines(
        day / "a.jsonl",
        [
            {"prompt": "Q?", "completion": " A.", "id": "x1"},
            {"prompt": "Q?", "completion": " B."},
            "{broken",
            {"prompt": "Q?"},
        ],
    )
    write_lines(day / "b.jsonl", [{"prompt": 3, "completion": " C."}, {"prompt": "", "completion": " D."}])
    result = read_day(day)
    assert result.kept.values.tolist() == [["x1", "Q?", " A."], ["a.jsonl:2", "Q?", " B."], ["b.jsonl:2", "", " D."]]
    q = result.quarantined
    assert q[["row", "field"]].values.tolist() == [[3, "<line>"], [4, "completion"], [1, "prompt"]]
    assert q["source"].tolist() == [str(day / "a.jsonl")] * 2 + [str(day / "b.jsonl")]
    assert result.counts() == {"input_rows": 6, "kept_rows": 3, "quarantined_rows": 3}


def test_fingerprints_change_when_a_file_changes(tmp_path):
    day = tmp_path / "2026-11-22"
    write_lines(day / "a.jsonl", [{"prompt": "Q", "completion": "A"}])
    quick, content = fingerprint(day), content_fingerprint(day)
    write_lines(day / "a.jsonl", [{"prompt": "Q", "completion": "A"}, {"prompt": "Q", "completion": "B"}])
    assert fingerprint(day) != quick and content_fingerprint(day) != content
    write_lines(day / "a.jsonl", [{"prompt": "Q", "completion": "A"}])
    assert content_fingerprint(day) == content  # same bytes, same artifact key


def test_a_file_that_is_not_utf8_is_quarantined_whole_and_the_day_goes_on(tmp_path):
    day = tmp_path / "2026-11-22"
    write_lines(day / "a.jsonl", [{"prompt": "Q?", "completion": " A."}])
    (day / "b.jsonl").write_bytes(b'{"prompt": "Q?", "completion": " ok"}\n{"prompt": "caf\xe9", "completion": "x"}\n')
    result = read_day(day)
    assert result.kept.values.tolist() == [["a.jsonl:1", "Q?", " A."]]
    (row,) = result.quarantined.to_dict("records")
    assert (row["source"], row["row"], row["field"]) == (str(day / "b.jsonl"), 0, "<file>")
    assert row["reason"].startswith("not UTF-8 text: byte 0xe9 at offset 53 (line 2)")
    assert result.counts() == {"input_rows": 2, "kept_rows": 1, "quarantined_rows": 1}
