"""`tideflow lsp` over stdio: a real subprocess and a real JSON-RPC exchange on its pipes
(initialize, didOpen, publishDiagnostics, didChange, completion, hover, definition,
shutdown/exit)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest

ACTIVITIES = """
from interpreter.activities import activity


@activity("charge_card")
def charge_card(payload):
    return payload


@activity("reserve_room")
def reserve_room(payload):
    return payload
"""

GOOD = """dsl: "1.0"
name: booking
signals:
  approve: {}
  reject: {}
states:
  reserve:
    type: activity
    activity: reserve_room
    next: approval
  approval:
    type: wait
    signal: approve
    timeout: 1h
    on_timeout: give_up
    next: charge
  charge:
    type: activity
    activity: charge_card
    catch:
      - errors: ["*"]
        next: give_up
    next: done
  give_up:
    type: fail
    error: NotApproved
  done:
    type: succeed
"""


class Client:
    """A minimal LSP client: Content-Length framed JSON-RPC over the server's pipes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "interpreter", "lsp", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.messages: Queue[dict[str, Any]] = Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    return
                if header in (b"\r\n", b"\n"):
                    break
                name, _, value = header.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert length is not None
            self.messages.put(json.loads(stream.read(length)))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self.send({"method": method, **({"params": params} if params is not None else {})})

    def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.next_id += 1
        ident = self.next_id
        self.send({"id": ident, "method": method, "params": params})
        reply = self.wait(lambda m: m.get("id") == ident and "method" not in m)
        assert "error" not in reply, reply
        return reply.get("result")

    def wait(self, matches: Any) -> dict[str, Any]:
        while True:
            try:
                message = self.messages.get(timeout=60)
            except Empty:
                stderr = self.process.stderr.read1().decode() if self.process.stderr else ""  # type: ignore[attr-defined]
                raise AssertionError(f"no reply from the server; stderr: {stderr}") from None
            if matches(message):
                return message

    def diagnostics(self, uri: str) -> list[dict[str, Any]]:
        message = self.wait(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
            )
        )
        found: list[dict[str, Any]] = message["params"]["diagnostics"]
        return found


@pytest.fixture
def client(tmp_path: Path) -> Any:
    pytest.importorskip("pygls")
    module = tmp_path / "acts.py"
    module.write_text(ACTIVITIES, encoding="utf-8")
    started = Client("--activities", str(module))
    result = started.request(
        "initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}}
    )
    capabilities = result["capabilities"]
    assert capabilities["hoverProvider"] and capabilities["definitionProvider"]
    assert "completionProvider" in capabilities
    started.notify("initialized", {})
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def _open(client: Client, uri: str, text: str) -> list[dict[str, Any]]:
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
    )
    return client.diagnostics(uri)


def _change(client: Client, uri: str, text: str, version: int) -> list[dict[str, Any]]:
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
    )
    return client.diagnostics(uri)


def _at(text: str, needle: str, offset: int = 0) -> dict[str, int]:
    """The LSP position (0-based) of `needle` in `text`, plus `offset` characters."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return {"line": line, "character": index - (text.rfind("\n", 0, index) + 1)}


def test_session_diagnostics_completion_hover_definition(client: Client, tmp_path: Path) -> None:
    uri = (tmp_path / "booking.yaml").as_uri()  # never written: the buffer is what counts
    assert _open(client, uri, GOOD) == []

    typo = GOOD.replace("next: approval", "next: reserv")
    found = _change(client, uri, typo, 2)
    (bad,) = [d for d in found if d["range"]["start"] == _at(typo, "next: reserv", 6)]
    assert "reserv" in bad["message"] and "hint:" in bad["message"]
    assert bad["range"]["end"] == _at(typo, "next: reserv", len("next: reserv"))
    assert bad["source"] == "tideflow" and bad["severity"] == 1 and bad["code"].startswith("TF")

    assert _change(client, uri, GOOD, 3) == []

    def labels(text: str, needle: str, offset: int) -> list[str]:
        result = client.request(
            "textDocument/completion",
            {"textDocument": {"uri": uri}, "position": _at(text, needle, offset)},
        )
        return sorted(item["label"] for item in result["items"])

    states = ["approval", "charge", "done", "give_up", "reserve"]
    assert labels(GOOD, "next: approval", len("next: ")) == states
    assert labels(GOOD, "on_timeout: give_up", len("on_timeout: ")) == states
    assert labels(GOOD, "    next: give_up", len("    next: ")) == states  # catch[].next
    assert labels(GOOD, "activity: charge_card", len("activity: ")) == [
        "charge_card",
        "http",
        "reserve_room",
    ]
    assert labels(GOOD, "signal: approve", len("signal: ")) == ["approve", "reject"]
    assert labels(GOOD, "error: NotApproved", len("error: ")) == []

    hover = client.request(
        "textDocument/hover",
        {"textDocument": {"uri": uri}, "position": _at(GOOD, "on_timeout", 2)},
    )
    assert "timeout" in hover["contents"]["value"].lower()
    assert hover["contents"]["kind"] == "markdown"

    target = client.request(
        "textDocument/definition",
        {"textDocument": {"uri": uri}, "position": _at(GOOD, "next: give_up", 8)},
    )
    assert target["uri"] == uri
    assert target["range"]["start"] == _at(GOOD, "give_up:\n")

    assert client.request("shutdown") is None
    client.notify("exit")
    assert client.process.wait(timeout=30) == 0


@pytest.mark.parametrize(
    ("old", "new", "word"),
    [
        ("next: approval", "next: reserv", "next: reserv"),
        ("timeout: 1h", "timeout: 1 second", "timeout: 1 second"),
    ],
    ids=["unknown-state", "bad-duration"],
)
def test_buffer_errors_show_a_diagnostic(
    client: Client, tmp_path: Path, old: str, new: str, word: str
) -> None:
    uri = (tmp_path / "w.yaml").as_uri()
    found = _open(client, uri, GOOD.replace(old, new))
    assert found, "no diagnostic"
    assert all(d["code"].startswith("TF") for d in found)
    start = _at(GOOD.replace(old, new), word, word.index(":") + 2)
    assert any(d["range"]["start"] == start for d in found), found


def test_unquoted_when_shows_a_diagnostic_with_its_hint(client: Client, tmp_path: Path) -> None:
    text = GOOD.replace(
        "  done:\n",
        "  route:\n    type: choice\n    choices:\n      - when: {{ vars.x }}\n"
        "        next: done\n  done:\n",
    )
    uri = (tmp_path / "w.yaml").as_uri()
    found = _open(client, uri, text)
    (quoted,) = [d for d in found if d["code"] == "TF014"]
    assert "hint:" in quoted["message"]
    assert quoted["range"]["start"] == _at(text, "{{ vars.x }}")


def test_completion_while_the_buffer_does_not_parse(client: Client, tmp_path: Path) -> None:
    """A half-typed line that breaks the YAML still completes from the last good parse."""
    uri = (tmp_path / "w.yaml").as_uri()
    _open(client, uri, GOOD)
    broken = GOOD.replace("    next: done\n", "    next: [d\n")
    assert _change(client, uri, broken, 2)
    result = client.request(
        "textDocument/completion",
        {"textDocument": {"uri": uri}, "position": _at(broken, "next: [d", len("next: "))},
    )
    assert "done" in [item["label"] for item in result["items"]]


def test_nested_states_complete_and_resolve_in_their_own_scope(
    client: Client, tmp_path: Path
) -> None:
    text = """dsl: "1.0"
name: nested
states:
  each:
    type: map
    items: [1, 2]
    start: first
    states:
      first:
        type: set
        vars: {x: 1}
        next: last
      last:
        type: succeed
    next: finish
  finish:
    type: succeed
"""
    uri = (tmp_path / "n.yaml").as_uri()
    assert _open(client, uri, text) == []
    result = client.request(
        "textDocument/completion",
        {"textDocument": {"uri": uri}, "position": _at(text, "next: last", len("next: "))},
    )
    assert sorted(item["label"] for item in result["items"]) == ["first", "last"]
    target = client.request(
        "textDocument/definition",
        {"textDocument": {"uri": uri}, "position": _at(text, "start: first", 8)},
    )
    assert target["range"]["start"] == _at(text, "first:\n")


def test_yaml_that_is_not_a_workflow_gets_no_diagnostics(client: Client, tmp_path: Path) -> None:
    uri = (tmp_path / "compose.yaml").as_uri()
    assert _open(client, uri, "services:\n  web:\n    image: nginx\n") == []
    # the same buffer once it declares dsl: is checked
    assert _change(client, uri, 'dsl: "1.0"\nservices: {}\n', 2)


def test_incremental_edits_are_applied_to_the_buffer(client: Client, tmp_path: Path) -> None:
    """Editors send ranges, not the whole text: the server checks the edited buffer."""
    uri = (tmp_path / "w.yaml").as_uri()
    assert _open(client, uri, GOOD) == []
    start = _at(GOOD, "next: approval", len("next: "))
    end = {**start, "character": start["character"] + len("approval")}
    client.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": {"start": start, "end": end}, "text": "reserv"}],
        },
    )
    found = client.diagnostics(uri)
    assert any(d["range"]["start"] == start and "reserv" in d["message"] for d in found), found


def test_a_burst_of_changes_is_checked_once_at_its_last_version(
    client: Client, tmp_path: Path
) -> None:
    """Keystrokes in a row: the diagnostics that arrive are those of the last buffer."""
    uri = (tmp_path / "w.yaml").as_uri()
    assert _open(client, uri, GOOD) == []
    for version, name in enumerate(["r", "re", "res", "rese", "reser"], start=2):
        client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": GOOD.replace("next: approval", f"next: {name}")}],
            },
        )
    final = GOOD.replace("next: approval", "next: reserv")
    found = _change(client, uri, final, 7)
    # whichever checks ran, the last published diagnostics are the final buffer's
    while not any("names 'reserv'" in d["message"] for d in found):
        assert any(d["code"] == "TF201" for d in found), found
        found = client.diagnostics(uri)
    assert any(d["range"]["start"] == _at(final, "next: reserv", 6) for d in found)


def test_without_pygls_the_command_says_which_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['pygls'] = None\n"
        "from interpreter.cli import main\n"
        "sys.exit(main(['lsp']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stderr
    assert "pygls" in done.stderr and "tideflow[lsp]" in done.stderr
    assert "Traceback" not in done.stderr
