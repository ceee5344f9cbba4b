"""The entity sample (samples/entity_greeting.yaml) driven from the command line against a real
`tideflow worker` subprocess, on every configured store: updates change the greeting's
language (an unsupported one is rejected), a query takes an argument, and the `finish`
update ends the run. Also its graph (the wait shows it is woken by an update)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import ROOT, SAMPLES, run_cli

from dsl.graph import to_dot, to_mermaid
from dsl.loader import load_file
from dsl.model import Workflow

ENTITY = SAMPLES / "entity_greeting.yaml"


@pytest.fixture
def worker(store_url: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "interpreter", "worker", "--db", store_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    proc.terminate()
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


def cli(store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_cli(*args, "--db", store_url)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_the_entity_sample_from_the_cli(store_url: str, worker: subprocess.Popen[str]) -> None:
    proc = cli(store_url, "start", str(ENTITY), "--input", '{"name": "Ada"}', "--json")
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]

    proc = cli(store_url, "update", run_id, "set_language", "--data", '{"language": "fr"}')
    assert (proc.returncode, proc.stdout) == (0, "en\n"), proc.stderr
    assert cli(store_url, "query", run_id, "greeting").stdout == "Bonjour, Ada!\n"
    proc = cli(store_url, "query", run_id, "greeting_in", "--data", '{"language": "de"}')
    assert (proc.returncode, proc.stdout) == (0, "Hallo, Ada!\n"), proc.stderr

    proc = cli(store_url, "update", run_id, "set_language", "--data", '{"language": "tlh"}')
    assert proc.returncode == 1
    assert "unsupported language tlh (supported: en, fr, de, es)" in proc.stderr
    assert cli(store_url, "query", run_id, "greeting").stdout == "Bonjour, Ada!\n"  # unchanged

    proc = cli(store_url, "update", run_id, "set_language", "--data", '{"lang": "de"}')
    assert proc.returncode == 2 and "'language' is a required property" in proc.stderr

    proc = cli(store_url, "update", run_id, "finish", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["value"] == "Bonjour, Ada!"
    status = json.loads(cli(store_url, "status", run_id, "--json").stdout)
    assert status["status"] == "completed"
    assert status["output"] == {"greeting": "Bonjour, Ada!", "language": "fr", "changes": 1}

    proc = cli(store_url, "update", run_id, "set_language", "--data", '{"language": "es"}')
    assert proc.returncode == 1 and "already ended (completed)" in proc.stderr


def test_the_entity_graph_shows_the_wait_for_an_update() -> None:
    loaded = load_file(ENTITY)
    assert loaded.document is not None
    workflow = Workflow.model_validate(loaded.document.data)
    assert "wait for update: finish" in to_mermaid(workflow)
    assert "wait for update: finish" in to_dot(workflow)
