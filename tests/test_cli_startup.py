"""`tideflow --help` and `tideflow status` start fast because the CLI does not import the
heavy libraries until a command needs them. Checked by what is imported, never by time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

# asyncio: only the worker, the server and `tideflow test` (the virtual loop) run an event loop;
# reading the clock (interpreter.clock, which every store and the client import) must not load
# it (20-30 ms of `tideflow status`).
HEAVY = (
    "pydantic",
    "jinja2",
    "httpx",
    "psycopg",
    "jsonschema",
    "dsl.model",
    "pygls",
    "lsprotocol",
    "asyncio",
)

_PROBE = """
import json, sys
{imports}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _heavy_after(*imports: str) -> list[str]:
    return _loaded_after(HEAVY, *imports)


@pytest.mark.parametrize(
    "imports",
    [
        ("import interpreter.cli",),
        # what `tideflow --help` runs: every command module registers its arguments
        ("from interpreter.cli import build_parser", "build_parser()"),
        # what `tideflow status` / `list` / `history` need: the client over a store
        ("import interpreter.client", "import interpreter.store.sqlite", "import interpreter"),
    ],
    ids=["import", "help", "status"],
)
def test_cli_start_imports_no_heavy_library(imports: tuple[str, ...]) -> None:
    assert _heavy_after(*imports) == []


def _loaded_after(modules: tuple[str, ...], *imports: str) -> list[str]:
    code = _PROBE.format(imports="\n".join(imports), heavy=modules)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_help_builds_no_dataclass_and_makes_no_id() -> None:
    """`tideflow --help` imports every command module: none of them needs the records module
    (dataclasses, and the inspect module that imports) or uuid at import."""
    help_path = ("from interpreter.cli import build_parser", "build_parser()")
    assert _loaded_after(("dataclasses", "uuid", "interpreter.core.records"), *help_path) == []


def test_status_path_makes_no_id_hashes_nothing_and_asks_no_host_name() -> None:
    """What `tideflow status` imports (the client over a SQLite store) generates no id, hashes
    no file, needs no host name and makes none of the records the engine writes: uuid,
    hashlib, socket and interpreter.store.writes are imported where runs are started, files
    loaded, leases checked and steps committed."""
    status = ("import interpreter.client", "import interpreter.store.sqlite", "import interpreter")
    unneeded = ("uuid", "hashlib", "socket", "interpreter.store.writes")
    assert _loaded_after(unneeded, *status) == []


def test_validate_without_schemas_needs_no_jsonschema() -> None:
    """jsonschema is imported by the schema pass of files with errors and by the check of
    input/signal schemas; the validation code itself does not pull it in."""
    assert "jsonschema" not in _heavy_after("import dsl.validate", "import dsl.lint")


def test_validate_of_a_valid_file_with_schemas_imports_only_what_it_needs() -> None:
    """`tideflow validate samples/order.yaml` (an input_schema, templates): the common schema
    check answers TF231 without jsonschema, its templates (paths, a comparison, a filter) are
    read without Jinja2, no test-file model is loaded, and only the validate command's module
    is imported of the CLI's fourteen."""
    sample = ROOT / "samples" / "order.yaml"
    loaded = _modules_after(
        "import contextlib, io",
        "from interpreter.cli import main",
        "with contextlib.redirect_stdout(io.StringIO()):",
        f"    assert main(['validate', {str(sample)!r}]) == 0",
    )
    assert {"dsl.model", "dsl.lint"} <= loaded  # it did validate and lint
    assert not loaded & {"jsonschema", "dsl.testfile", "dsl.schema_check", "pygls", "httpx"}
    assert not loaded & {"jinja2", "dsl.templates", "dsl.template_helpers"}
    commands = {
        m for m in loaded if m.startswith("interpreter.cli.") and m.endswith(("_cmd", "_cmds"))
    }
    assert commands == {"interpreter.cli.validate_cmd"}


def _modules_after(*lines: str) -> set[str]:
    code = "\n".join([*lines, "import json, sys", "print(json.dumps(sorted(sys.modules)))"])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_validate_builds_one_validator_and_scans_no_plugins() -> None:
    """`tideflow validate samples/order.yaml` (retry policies, timeouts) builds the core schema
    once, Workflow's: lint reads the settings blocks without model_dump, which would build
    RetryPolicy's and Timeouts' own. And pydantic does not scan the installed distributions'
    entry points for plugins (PYDANTIC_DISABLE_PLUGINS while the command runs, then unset)."""
    sample = ROOT / "samples" / "order.yaml"
    code = f"""
import contextlib, io, json, os, sys
from interpreter.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(['validate', {str(sample)!r}]) == 0
import pydantic
from pydantic.plugin import _loader
from dsl import model
built = sorted(
    name for name, value in vars(model).items()
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel)
    and value.__pydantic_complete__ and value.__module__ == model.__name__
)
print(json.dumps([built, _loader._plugins is not None, "PYDANTIC_DISABLE_PLUGINS" in os.environ]))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    built, scanned, left_set = json.loads(done.stdout.splitlines()[-1])
    assert built == ["Workflow"]
    assert not scanned
    assert not left_set


def test_validate_runs_no_garbage_collection_and_gives_the_collector_back() -> None:
    """`tideflow validate samples/order.yaml` runs no collection from parsing its arguments to
    printing the result: what it imports and builds lives until the process ends
    (interpreter/collector.py). Afterwards the collector is on and nothing is left frozen."""
    sample = ROOT / "samples" / "order.yaml"
    assert _collections_during(["validate", str(sample)]) == ([], True, 0)


def test_status_runs_no_garbage_collection(tmp_path: Path) -> None:
    """`tideflow status ID` neither: the parser, the client's modules and its store are made
    with the collector paused."""
    db = str(tmp_path / "runs.db")
    sample = str(ROOT / "samples" / "greeting.yaml")
    start = [sys.executable, "-m", "interpreter", "start", sample, "--db", db]
    started = subprocess.run(
        [*start, "--input", '{"name": "gc"}'],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    run_id = started.stdout.strip()
    assert _collections_during(["status", run_id, "--db", db]) == ([], True, 0)


def _collections_during(argv: list[str]) -> tuple[list[int], bool, int]:
    """The collections `main(argv)` ran in a fresh process (their generations), and whether
    the collector was on and how many objects were frozen afterwards."""
    code = f"""
import contextlib, gc, io, json
from interpreter.cli import main
passes = []
gc.callbacks.append(lambda phase, info: phase == "start" and passes.append(info["generation"]))
with contextlib.redirect_stdout(io.StringIO()):
    assert main({argv!r}) == 0
gc.callbacks.clear()
print(json.dumps([passes, gc.isenabled(), gc.get_freeze_count()]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    passes, enabled, frozen = json.loads(done.stdout.splitlines()[-1])
    return passes, enabled, frozen
