"""Benchmark: `tideflow lsp` round trips on generated workflows (bench/validate.py's `chain`).

    .venv/bin/python bench/lsp.py [--sizes 100,1000,5000] [--runs 5]

One server process per size, spoken to over its pipes as an editor would. Times, median and
min over the runs: didOpen -> publishDiagnostics (a clean file), didChange that breaks a
`next:` -> publishDiagnostics (the schema/lint pass of a file with an error), completion after
`next:` and go-to-definition. Every change re-validates the whole buffer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate import chain

ROOT = Path(__file__).resolve().parent.parent


class _Server:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "interpreter", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        self.ident = 0

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        stream = self.process.stdout
        assert stream is not None
        length = 0
        while (header := stream.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        message: dict[str, Any] = json.loads(stream.read(length))
        return message

    def request(self, method: str, params: Any) -> Any:
        self.ident += 1
        self.send({"id": self.ident, "method": method, "params": params})
        while (reply := self.receive()).get("id") != self.ident or "method" in reply:
            pass
        return reply.get("result")

    def notify_and_wait(self, method: str, params: Any) -> list[Any]:
        self.send({"method": method, "params": params})
        while (message := self.receive()).get("method") != "textDocument/publishDiagnostics":
            pass
        found: list[Any] = message["params"]["diagnostics"]
        return found


def _timed(action: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - started, result


def measure(size: int, runs: int) -> dict[str, list[float]]:
    text = chain(size)
    broken = text.replace("next: step_1\n", "next: step_1x\n", 1)
    line = text.splitlines().index("    next: step_1")
    server = _Server()
    server.request("initialize", {"processId": None, "capabilities": {}})
    server.send({"method": "initialized", "params": {}})
    times: dict[str, list[float]] = {"open": [], "change": [], "completion": [], "definition": []}
    for run in range(runs):
        uri = f"file:///bench/{size}-{run}.yaml"
        doc = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        took, found = _timed(server.notify_and_wait, "textDocument/didOpen", {"textDocument": doc})
        assert found == [], found[:3]
        times["open"].append(took)
        change = {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": broken}]}
        took, found = _timed(server.notify_and_wait, "textDocument/didChange", change)
        assert found, "the broken next: was not reported"
        times["change"].append(took)
        where = {"textDocument": {"uri": uri}, "position": {"line": line, "character": 10}}
        took, result = _timed(server.request, "textDocument/completion", where)
        assert len(result["items"]) == size + 1  # and done
        times["completion"].append(took)
        change = {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": text}]}
        server.notify_and_wait("textDocument/didChange", change)
        took, result = _timed(server.request, "textDocument/definition", where)
        assert result is not None
        times["definition"].append(took)
    server.request("shutdown", None)
    server.send({"method": "exit"})
    server.process.wait(timeout=60)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(
        "| states | didOpen -> diagnostics | didChange (error) -> diagnostics | completion | definition |"
    )
    print("| --- | --- | --- | --- | --- |")
    for size in (int(s) for s in args.sizes.split(",")):
        times = measure(size, args.runs)
        cells = [
            f"{statistics.median(t) * 1000:.0f} ms (min {min(t) * 1000:.0f})"
            for t in times.values()
        ]
        print(f"| {size:,} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
