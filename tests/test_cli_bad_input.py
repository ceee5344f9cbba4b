"""Bad input given to the CLI (and the client under it): data that is not JSON a run can keep,
run ids and names that are not valid text, a reused run id, a store that does not exist, a
closed stdout, Ctrl-C. Every case ends with a clear message and a stable exit code, never a
traceback."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_ACTIVITIES, SAMPLES, run_cli
from run_helpers import assert_clean, cli_env, cli_popen, finish, one_json, wait_for, write_workflow

from interpreter import Client, InputInvalid, StoreError
from interpreter.errors import RunIdConflict

GREETING = SAMPLES / "greeting.yaml"
ACT = ("--activities", str(SAMPLE_ACTIVITIES))
NOT_UTF8 = "\udcff"  # what Python makes of the byte 0xff in argv ($'\xff' in bash)
HUGE_INT = "9" * 5000


def no_runs(store_url: str) -> bool:
    with Client(store_url) as client:
        return client.list_runs() == []


def napping(tmp_path: Path, duration: str = "30s", name: str = "nap.yaml") -> Path:
    return write_workflow(
        tmp_path,
        f"""
        name: nap
        vars:
          n: 1
        queries:
          n: "{{{{ vars.n }}}}"
          big: "{{{{ 2 ** (vars.n + 20000) }}}}"
        signals:
          poke: {{}}
        states:
          nap:
            type: sleep
            duration: {duration}
            end: true
        """,
        name,
    )


# --------------------------------------------------------------------------- JSON data


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"name": ' + HUGE_INT + "}", "4,300 digits"),
        ("[" * 100_000, "nested too deeply"),
        ('{"name": NaN}', "NaN"),
        ("[Infinity]", "Infinity"),
        ('"\\ud800"', "lone surrogate"),
        ('{"name": "Ada"', "line 1"),
    ],
)
def test_input_that_is_not_json_data_exits_2(store_url: str, text: str, reason: str) -> None:
    proc = run_cli("run", str(GREETING), "--input", text, *ACT, "--db", store_url)
    assert_clean(proc, 2)
    assert "error: --input is not valid JSON data: " in proc.stderr
    assert reason in proc.stderr
    assert "hint:" in proc.stderr
    proc = run_cli("start", str(GREETING), "--input", text, "--db", store_url)
    assert_clean(proc, 2)
    assert reason in proc.stderr
    assert no_runs(store_url)


def test_validate_input_uses_the_same_checks(tmp_path: Path) -> None:
    for text, reason in [("[NaN]", "NaN"), ("[" + HUGE_INT + "]", "4,300 digits")]:
        proc = run_cli("validate", str(GREETING), "--input", text)
        assert_clean(proc, 2)
        assert "--input is not valid JSON data" in proc.stderr and reason in proc.stderr
    data = tmp_path / "in.json"
    data.write_text("[" * 100_000, encoding="utf-8")
    proc = run_cli("validate", str(GREETING), "--input", f"@{data}")
    assert_clean(proc, 2)
    assert f"--input file {data} is not valid JSON data: it is nested too deeply" in proc.stderr


@pytest.mark.parametrize("command", ["run", "start", "validate"])
def test_input_at_without_a_file_name(command: str, tmp_path: Path) -> None:
    extra = () if command == "validate" else ("--db", str(tmp_path / "s.db"))
    proc = run_cli(command, str(GREETING), "--input", "@", *extra)
    assert_clean(proc, 2)
    assert "--input: missing file name after @" in proc.stderr
    assert not (tmp_path / "s.db").exists()


def test_signal_data_that_is_not_json_data_exits_2(store_url: str, tmp_path: Path) -> None:
    wf = napping(tmp_path)
    assert_clean(run_cli("start", str(wf), "--id", "n1", "--db", store_url), 0)
    for text, reason in [
        ("[" + HUGE_INT + "]", "4,300 digits"),
        ("[" * 100_000, "nested too deeply"),
        ("-Infinity", "Infinity"),
        ('"\\udfff"', "lone surrogate"),
    ]:
        proc = run_cli("signal", "n1", "poke", f"--data={text}", "--db", store_url)
        assert_clean(proc, 2)
        assert "error: --data is not valid JSON data: " in proc.stderr and reason in proc.stderr
    proc = run_cli("signal", "n1", "poke", "--data", "@", "--db", store_url)
    assert_clean(proc, 2)
    assert "--data: missing file name after @" in proc.stderr


def test_client_refuses_values_a_run_cannot_keep(store_url: str, tmp_path: Path) -> None:
    wf = napping(tmp_path)
    with Client(store_url) as client:
        for bad in (math.nan, [math.inf], 10**5000, "\ud800", {"x": "y" * (3 * 1024 * 1024)}):
            with pytest.raises(InputInvalid, match="the run input cannot be kept in a run"):
                client.start(wf, bad)
        assert client.list_runs() == []
        run_id = client.start(wf, {"ok": 1})
        with pytest.raises(InputInvalid, match=r"payload of signal 'poke'.*NaN or Infinity"):
            client.signal(run_id, "poke", {"x": math.nan})
        for bad_id in ("", "a\nb", "x" * 201, "bad\udcff"):
            with pytest.raises(InputInvalid, match="run id"):
                client.start(wf, None, run_id=bad_id)


# --------------------------------------------------------------------------- run ids and text


@pytest.mark.parametrize(
    ("run_id", "message"),
    [
        ("", "run id must not be empty"),
        ("a\nb", "control character"),
        ("tab\there", "control character"),
        ("x" * 201, "the limit is 200"),
        (f"bad{NOT_UTF8}", "not valid UTF-8"),
        ("   ", "only whitespace"),
        ("pay\u202elpt.exe", "text-direction"),
        ("a\u200bb", "invisible"),
        ("\ufeffrun", "invisible"),
    ],
)
def test_bad_run_id_for_a_new_run_exits_2(store_url: str, run_id: str, message: str) -> None:
    for command in ("run", "start"):
        proc = run_cli(
            command, str(GREETING), "--input", '{"name": "A"}', *ACT, "--id", run_id,
            "--db", store_url,
        )  # fmt: skip
        assert_clean(proc, 2)
        assert "--id" in proc.stderr and message in proc.stderr
    assert no_runs(store_url)


def test_run_id_of_200_characters_is_fine(store_url: str) -> None:
    run_id = "r" * 200
    proc = run_cli("start", str(GREETING), "--input", '{"name": "A"}', "--id", run_id,
                   "--db", store_url)  # fmt: skip
    assert_clean(proc, 0)
    assert proc.stdout.strip() == run_id


@pytest.mark.parametrize(
    "args",
    [
        ("status", NOT_UTF8),
        ("history", ""),
        ("cancel", NOT_UTF8),
        ("terminate", "r1", "--reason", NOT_UTF8),
        ("list", "--workflow", NOT_UTF8),
        ("signal", "r1", NOT_UTF8),
        ("signal", NOT_UTF8, "poke"),
        ("query", "r1", NOT_UTF8),
        ("resume", NOT_UTF8),
    ],
)
def test_text_args_that_are_not_utf8_exit_2(store_url: str, args: tuple[str, ...]) -> None:
    proc = run_cli(*args, "--db", store_url)
    assert_clean(proc, 2)
    assert "not valid UTF-8" in proc.stderr or "must not be empty" in proc.stderr


def test_invalid_utf8_in_the_workflow_file_name_is_clean(tmp_path: Path) -> None:
    """The last-resort net: a value no argument check covers (here the file name, stored with
    the run) that is not UTF-8."""
    wf = napping(tmp_path)
    odd = tmp_path / f"nap{NOT_UTF8}.yaml"
    try:
        odd.write_bytes(wf.read_bytes())
    except (UnicodeEncodeError, OSError):
        pytest.skip("the file system does not take this name")
    proc = run_cli("start", str(odd), "--db", str(tmp_path / "s.db"))
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- reused run ids


def test_reusing_a_run_id_needs_the_same_workflow_and_input(store_url: str, tmp_path: Path) -> None:
    wf = napping(tmp_path)
    first = run_cli("start", str(wf), "--id", "X", "--input", '{"a": 1}', "--db", store_url)
    assert_clean(first, 0)
    again = run_cli(
        "start", str(wf), "--id", "X", "--input", '{"a": 1}', "--db", store_url, "--json"
    )
    assert_clean(again, 0)
    assert one_json(again) == {"run_id": "X", "workflow": "nap", "status": "running",
                               "created": False}  # fmt: skip

    other_input = run_cli("start", str(wf), "--id", "X", "--input", '{"a": 2}', "--db", store_url)
    assert_clean(other_input, 2)
    assert "run 'X' already exists for workflow 'nap' with a different input" in (
        other_input.stderr
    )
    assert "hint:" in other_input.stderr

    changed = napping(tmp_path, duration="20s", name="nap2.yaml")
    other_def = run_cli("run", str(changed), "--id", "X", "--input", '{"a": 1}',
                        "--db", store_url)  # fmt: skip
    assert_clean(other_def, 2)
    assert "run 'X' already exists for workflow 'nap' with a different definition" in (
        other_def.stderr
    )

    other_wf = run_cli("run", str(GREETING), "--id", "X", "--input", '{"name": "A"}', *ACT,
                       "--db", store_url)  # fmt: skip
    assert_clean(other_wf, 2)
    assert "run 'X' already exists for workflow 'nap', not 'greeting'" in other_wf.stderr

    with Client(store_url) as client:
        assert [r.id for r in client.list_runs()] == ["X"]
        assert client.start(wf, {"a": 1}, run_id="X") == "X"
        with pytest.raises(RunIdConflict, match="different input"):
            client.start(wf, {"a": 3}, run_id="X")


# --------------------------------------------------------------------------- missing store


@pytest.mark.parametrize(
    "args",
    [
        ("status", "r1"),
        ("history", "r1"),
        ("list",),
        ("query", "r1", "n"),
        ("signal", "r1", "poke"),
        ("cancel", "r1"),
        ("terminate", "r1"),
        ("resume", "r1"),
    ],
)
def test_reading_a_store_that_does_not_exist_does_not_create_it(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = tmp_path / "typo" / "store.db"
    proc = run_cli(*args, "--db", str(db))
    assert_clean(proc, 2)
    assert f"store {db} does not exist" in proc.stderr
    assert "hint:" in proc.stderr and "TIDEFLOW_DB" in proc.stderr
    assert not db.parent.exists()
    proc = run_cli(*args, cwd=tmp_path, env={"TIDEFLOW_DB": ""})
    assert_clean(proc, 2)
    assert not (tmp_path / ".tideflow").exists()


def test_client_create_false(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Client(str(tmp_path / "none.db"), create=False)
    assert not (tmp_path / "none.db").exists()
    Client(str(tmp_path / "new.db")).close()
    Client(str(tmp_path / "new.db"), create=False).close()


@pytest.mark.parametrize("args", [("list",), ("status", "r1"), ("run", str(GREETING))])
def test_empty_db_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = run_cli(*args, "--db", "", cwd=tmp_path)
    assert_clean(proc, 2)
    assert "--db" in proc.stderr and "must not be empty" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- closed stdout


@pytest.mark.parametrize(
    "args", [("history", "X"), ("status", "X"), ("list", "--json"), ("list",), ("schema",)]
)
def test_closed_stdout_is_not_an_error(
    store_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    assert_clean(run_cli("start", str(napping(tmp_path)), "--id", "X", "--db", store_url), 0)
    extra = () if args == ("schema",) else ("--db", store_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "interpreter", *args, *extra],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` that already stopped reading
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def test_piped_to_head(store_url: str, tmp_path: Path) -> None:
    wf = napping(tmp_path)
    with Client(store_url) as client:
        from interpreter.client import load_definition

        defn = load_definition(wf)
        for index in range(300):
            client.start_run(defn, {"i": index, "pad": "x" * 200})
    tideflow = [sys.executable, "-m", "interpreter"]
    for args in (["list", "--json"], ["list"]):
        proc = subprocess.run(
            " ".join(map(str, [*tideflow, *args, "--db", f"'{store_url}'"])) + " | head -c 10",
            shell=True,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            executable="/bin/bash",
        )
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        # Nothing but `list`'s own paging hint (300 runs, pages of 100), when it got that far.
        noise = [line for line in proc.stderr.splitlines() if not line.startswith("more runs:")]
        assert noise == [], proc.stderr


# --------------------------------------------------------------------------- other arguments


def test_list_status_must_be_a_known_status(store_url: str) -> None:
    proc = run_cli("list", "--status", "bogus", "--db", store_url)
    assert_clean(proc, 2)
    for status in ("running", "completed", "failed", "cancelled", "timed_out", "terminated"):
        assert status in proc.stderr
    Client(store_url).close()
    assert_clean(run_cli("list", "--status", "running", "--db", store_url), 0)


@pytest.mark.parametrize("command", ["run", "start", "graph"])
def test_workflow_file_that_is_a_directory(command: str, tmp_path: Path) -> None:
    extra = () if command == "graph" else ("--db", str(tmp_path / "s.db"))
    proc = run_cli(command, str(SAMPLES), *extra)
    assert_clean(proc, 2)
    assert f"workflow file {SAMPLES} is a directory" in proc.stderr
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("command", ["run", "start", "graph", "validate"])
def test_workflows_dir_that_does_not_exist(command: str, tmp_path: Path) -> None:
    extra = () if command in ("graph", "validate") else ("--db", str(tmp_path / "s.db"))
    proc = run_cli(command, str(GREETING), "--workflows", str(tmp_path / "nope"), *extra)
    assert_clean(proc, 2)
    assert f"--workflows {tmp_path / 'nope'}: not a directory" in proc.stderr
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("grace", ["-1", "nan", "inf", "-inf", "soon"])
def test_worker_grace_must_be_finite_and_not_negative(tmp_path: Path, grace: str) -> None:
    proc = run_cli("worker", f"--grace={grace}", "--db", str(tmp_path / "s.db"))
    assert_clean(proc, 2)
    assert "--grace" in proc.stderr and "not a number of seconds" in proc.stderr


def test_query_whose_value_is_not_json_data_fails_cleanly(store_url: str, tmp_path: Path) -> None:
    wf = napping(tmp_path)
    assert_clean(run_cli("start", str(wf), "--id", "Q", "--db", store_url), 0)
    for extra in ((), ("--json",)):
        proc = run_cli("query", "Q", "big", "--db", store_url, *extra)
        assert_clean(proc, 1)
        assert proc.stderr.startswith("error: ") and "big" in proc.stderr
        assert proc.stdout == ""
    proc = run_cli("query", "Q", "n", "--db", store_url)
    assert_clean(proc, 0)
    assert proc.stdout.strip() == "1"


# --------------------------------------------------------------------------- Ctrl-C


def _asleep(
    run_id: str, *db: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> bool:
    """The run's sleep has begun: `tideflow run` drives it, so its Ctrl-C handler is in place.
    (The run exists before that; a SIGINT sent in between is lost where the test's process
    was started with SIGINT ignored, as a shell's background job is, and the nap then ends
    normally.)"""
    shown = run_cli("history", run_id, *db, "--json", cwd=cwd, env=env)
    if shown.returncode != 0:
        return False
    return any(event["type"] == "TimerStarted" for event in json.loads(shown.stdout))


def test_ctrl_c_during_run_says_how_to_continue(store_url: str, tmp_path: Path) -> None:
    # Long enough that the run is still asleep when the Ctrl-C comes on a loaded machine;
    # `resume` then sleeps what is left of it.
    wf = napping(tmp_path, duration="8s")
    proc = cli_popen("run", str(wf), "--id", "nap-1", "--db", store_url, "--json")
    wait_for(lambda: _asleep("nap-1", "--db", store_url), timeout=30, interval=0.05)
    proc.send_signal(signal.SIGINT)
    done = finish(proc)
    assert_clean(done, 130)
    assert "interrupted; run nap-1 is still running — continue it with: tideflow resume nap-1" in (
        done.stderr
    )
    assert "--db" in done.stderr
    assert one_json(done) == {"run_id": "nap-1", "status": "running", "interrupted": True}
    status = run_cli("status", "nap-1", "--db", store_url, "--json")
    assert_clean(status, 0)
    assert one_json(status)["status"] == "running"

    resumed = run_cli("resume", "nap-1", "--db", store_url, "--json", timeout=60)
    assert_clean(resumed, 0)
    assert one_json(resumed)["status"] == "completed"


def test_ctrl_c_hint_names_no_db_when_none_was_given(tmp_path: Path) -> None:
    wf = napping(tmp_path, duration="30s")
    proc = cli_popen("run", str(wf), "--id", "nap-2", cwd=tmp_path, env={"TIDEFLOW_DB": ""})
    wait_for(lambda: (tmp_path / ".tideflow" / "tideflow.db").exists(), timeout=30)
    wait_for(
        lambda: _asleep("nap-2", cwd=tmp_path, env={"TIDEFLOW_DB": ""}),
        timeout=30,
        interval=0.05,
    )
    proc.send_signal(signal.SIGINT)
    done = finish(proc)
    assert_clean(done, 130)
    assert done.stderr.strip().endswith("continue it with: tideflow resume nap-2")
    assert done.stdout == ""
