"""The CLI's readable output helpers (interpreter/cli/_ux.py): folding JSON payloads without
losing or cutting anything silently, tables that fit a width, durations and relative times,
colour only when asked for."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpreter.cli import _ux

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(value=JSON, width=st.integers(min_value=10, max_value=120))
def test_a_folded_payload_is_the_json_text_in_order_within_the_width(
    value: object, width: int
) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    lines = _ux.fold_json(value, width, wide=False, max_lines=10_000)
    assert "".join(lines) == text
    assert all(len(line) <= width for line in lines)


def test_a_long_payload_is_summed_up_after_four_lines_and_whole_when_wide() -> None:
    value = {"items": [{"sku": f"SKU-{i}", "qty": i} for i in range(100)]}
    text = json.dumps(value, separators=(",", ":"))
    lines = _ux.fold_json(value, 40, wide=False)
    assert len(lines) == 5
    shown = "".join(lines[:4])
    assert text.startswith(shown)
    assert lines[4] == f"… {len(text) - len(shown):,} more characters (--wide shows them)"
    assert _ux.fold_json(value, 40, wide=True) == [text]


def test_breaks_fall_after_commas_and_colons_outside_strings() -> None:
    lines = _ux.fold_json({"a": "x, y: z", "b": [1, 2, 3]}, 12, wide=False)
    assert lines[0] == '{"a":'
    assert '"x, y: z",' in lines


def test_a_table_keeps_ids_whole_and_folds_the_last_column_to_the_width() -> None:
    rows = [["run-" + "x" * 30, "ok", "p" * 100]]
    lines = _ux.table(["ID", "STATUS", "PAYLOAD"], rows, width=60)
    assert all(len(line) <= 60 for line in lines)
    assert ("run-" + "x" * 30) in lines[1]
    assert "".join(line.split()[-1] for line in lines[1:]).endswith("p" * 10)
    assert sum(line.count("p") for line in lines[1:]) == 100


def test_durations_and_relative_times() -> None:
    assert _ux.duration(0.0123) == "12ms"
    assert _ux.duration(3.456) == "3.46s"
    assert _ux.duration(125) == "2m05s"
    assert _ux.duration(3 * 3600 + 240) == "3h04m"
    assert _ux.relative_time(100.0, 160.0) == "1m00s ago"
    assert _ux.relative_time(200.0, 160.0) == "in 40.0s"
    assert _ux.relative_time(None, 1.0) == "-"


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert _ux.colour_enabled(Tty())
    assert not _ux.colour_enabled(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not _ux.colour_enabled(Tty())
    assert _ux.paint("x", "red", False) == "x"
    assert _ux.paint("x", "red", True) == "\x1b[31mx\x1b[0m"


def test_did_you_mean() -> None:
    assert _ux.did_you_mean("stauts", ["status", "start", "list"]) == "status"
    assert _ux.did_you_mean("zzz", ["status", "start"]) is None


def test_run_progress_shows_the_first_state_a_countdown_and_the_total_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import time as clock

    from interpreter.cli.progress import Progress
    from interpreter.core.records import Event
    from interpreter.store import RunRecord

    run = RunRecord(
        id="r1", workflow="w", def_hash="h", status="running", input=None, output=None,
        error=None, state={"frames": {"f": {"state": "charge"}}}, parent_id=None, root_id="r1",
        depth=0, created_at=0.0, updated_at=0.0, ended_at=None, next_seq=3,
    )  # fmt: skip
    progress = Progress(enabled=True)
    progress.begin(run)
    progress(run, [Event("TimerStarted", "nap", payload={"kind": "sleep", "delay": 1.5})])
    deadline = clock.monotonic() + 5
    written = ""
    while "left" not in written and clock.monotonic() < deadline:
        clock.sleep(0.1)  # the countdown thread writes twice a second
        written += capsys.readouterr().err
    assert "waiting: sleep in nap, " in written and " left" in written
    progress.summary({"run_id": "r1", "status": "completed", "output": None, "error": None}, 2.5)
    captured = capsys.readouterr()
    assert "run r1 completed in 2.50s" in captured.out
    silent = Progress(enabled=False)
    silent.begin(run)
    assert capsys.readouterr().err == ""


def test_run_progress_first_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from interpreter.cli.progress import Progress
    from interpreter.core.records import Event
    from interpreter.store import RunRecord

    run = RunRecord(
        id="r1", workflow="w", def_hash="h", status="running", input=None, output=None,
        error=None, state={"frames": {"f": {"state": "charge"}}}, parent_id=None, root_id="r1",
        depth=0, created_at=0.0, updated_at=0.0, ended_at=None, next_seq=3,
    )  # fmt: skip
    progress = Progress(enabled=True)
    progress.begin(run)
    progress(run, [Event("RetryScheduled", "charge", 2, payload={"delay": 0.5})])
    err = capsys.readouterr().err
    assert "r1 started at charge" in err
    assert "RetryScheduled" in err and "attempt 2 in 0.5s" in err
