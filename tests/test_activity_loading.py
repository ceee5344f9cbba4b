"""Loading activities files and modules (--activities), and what `ctx.heartbeat` accepts."""

from __future__ import annotations

import importlib
import math
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from run_helpers import assert_clean, write_workflow

from interpreter import ActivityContext, Client, load_activity_modules
from interpreter.activities import registry
from interpreter.errors import ActivityRegistryError

GREET = """\
from interpreter import activity

@activity("greet")
def greet(payload):
    return "hello"
"""

WORKFLOW = """
    name: greeter
    states:
      hello: {type: activity, activity: greet, end: true}
"""


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test registers into an empty registry; the process's own activities come back."""
    saved = dict(registry._REGISTRY)
    registry._REGISTRY.clear()
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(*specs: str | Path) -> str:
    with pytest.raises(ActivityRegistryError) as caught:
        load_activity_modules([str(s) for s in specs])
    message = caught.value.message
    assert "tideflow_activities_" not in message, "an internal module name leaked"
    return message


def cli_load(tmp_path: Path, *specs: str | Path) -> Any:
    """`tideflow start` with these --activities: they are loaded before anything else."""
    workflow = write_workflow(tmp_path, WORKFLOW)
    args = [arg for spec in specs for arg in ("--activities", str(spec))]
    return run_cli("start", str(workflow), *args, "--db", str(tmp_path / "s.db"), cwd=tmp_path)


# --------------------------------------------------------------------------- registered twice


def test_two_files_registering_one_name_is_an_error(tmp_path: Path) -> None:
    first = write(tmp_path, "first.py", GREET)
    (tmp_path / "other").mkdir()
    second = write(tmp_path / "other", "second.py", GREET)
    message = load_error(first, second)
    assert message == f"activity 'greet' is registered twice: in {first} and {second}"
    proc = cli_load(tmp_path, "first.py", "other/second.py")
    assert_clean(proc, 2)
    assert "activity 'greet' is registered twice: in first.py and other/second.py" in proc.stderr


def test_two_modules_registering_one_name_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "mod_a.py", GREET)
    write(tmp_path, "mod_b.py", GREET)
    sys.path.insert(0, str(tmp_path))
    try:
        assert load_error("mod_a", "mod_b") == (
            "activity 'greet' is registered twice: in mod_a and mod_b"
        )
    finally:
        sys.modules.pop("mod_a", None)
        sys.modules.pop("mod_b", None)


def test_one_file_registering_one_name_for_two_functions_is_an_error(tmp_path: Path) -> None:
    both = write(
        tmp_path, "both.py", GREET + '\n@activity("greet")\ndef hello(payload):\n    return 1\n'
    )
    assert load_error(both) == (
        f"activity 'greet' is registered twice: in {both} (greet) and {both} (hello)"
    )


def test_loading_one_file_again_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "greetings.py", GREET)
    monkeypatch.chdir(tmp_path)
    # The same file by other spellings, and as a module; then that module reloaded.
    names = load_activity_modules([str(path), "greetings.py", "./greetings.py", "greetings"])
    assert "greet" in names
    try:
        importlib.reload(sys.modules["greetings"])
    finally:
        sys.modules.pop("greetings", None)
    assert registry.get_activity("greet") is not None
    assert_clean(cli_load(tmp_path, "greetings.py", str(path), "greetings"), 0)


# --------------------------------------------------------------------------- failing at import


@pytest.mark.parametrize("body", ["import sys\nsys.exit(3)\n", 'raise SystemExit("bye")\n'])
def test_a_file_calling_sys_exit_is_a_clean_error(tmp_path: Path, body: str) -> None:
    path = write(tmp_path, "x.py", GREET + body)
    assert load_error(path) == f"activities file '{path}' called sys.exit() while loading"
    proc = cli_load(tmp_path, "x.py")
    assert_clean(proc, 2)  # not the file's exit code
    assert "activities file 'x.py' called sys.exit() while loading" in proc.stderr


def test_a_module_calling_sys_exit_is_a_clean_error(tmp_path: Path) -> None:
    write(tmp_path, "exits.py", "import sys\nsys.exit(3)\n")
    sys.path.insert(0, str(tmp_path))
    assert load_error("exits") == "activities module 'exits' called sys.exit() while loading"
    assert "exits" not in sys.modules


UNPRINTABLE = """\
class Odd(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")

raise Odd()
"""


def test_an_exception_that_cannot_be_printed_is_a_clean_error(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.py", UNPRINTABLE)
    message = load_error(path)
    assert message.startswith(f"activities file '{path}' failed to load: Odd: ")
    proc = cli_load(tmp_path, "odd.py")
    assert_clean(proc, 2)
    assert "activities file 'odd.py' failed to load: Odd" in proc.stderr


def test_a_failed_file_can_be_loaded_again_once_fixed(tmp_path: Path) -> None:
    path = write(tmp_path, "fixme.py", "raise ValueError('not yet')\n")
    assert "ValueError: not yet" in load_error(path)
    path.write_text(GREET)
    assert "greet" in load_activity_modules([str(path)])


# --------------------------------------------------------------------------- heartbeat details


def _context() -> ActivityContext:
    return ActivityContext(
        run_id="r", workflow="w", state="s", attempt=1, idempotency_key="k", on_heartbeat=None
    )


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        ({1, 2}, "set is not JSON serializable"),
        ({"progress": math.nan}, "NaN"),
        ("\udc80", "lone surrogate"),
    ],
)
def test_heartbeat_details_that_are_not_json_raise_in_the_activity(
    details: Any, reason: str
) -> None:
    ctx = _context()
    with pytest.raises(ValueError, match="heartbeat details must be JSON data: .*" + reason):
        ctx.heartbeat(details)
    ctx.heartbeat({"progress": 0.5})  # JSON data is fine


HEARTBEATS = """\
from interpreter import activity

@activity("beats")
def beats(ctx, payload):
    ctx.heartbeat({"done": 1})
    ctx.heartbeat({1, 2})
    return "unreachable"
"""


def test_a_bad_heartbeat_fails_the_attempt_with_the_reason(store_url: str, tmp_path: Path) -> None:
    load_activity_modules([str(write(tmp_path, "beats.py", HEARTBEATS))])
    workflow = write_workflow(
        tmp_path,
        """
        name: beating
        states:
          beat:
            type: activity
            activity: beats
            retry: {max_attempts: 1}
            end: true
        """,
    )
    with Client(store_url) as client:
        run = client.execute(client.start(workflow, None))
    assert run.status == "failed"
    assert run.error["type"] == "ValueError"
    assert "heartbeat details must be JSON data" in run.error["message"]
