"""Issue 9, High: memory bombs must not get past the template limits.

`{{ 'x'|center(700000000)|length }}` took a worker to 708 MB, and a loop concatenating 1 MB
strings to 1.4 GB: the 1,000,000-character limit was checked only after rendering. Every
filter, method and operator that can build a large value is now checked before it allocates.
Each case below fails its state cleanly (ExpressionLimit, or ExpressionError for the checks
that were already there), naming the state and the field; run by a real worker process, the
worker's peak RSS stays under 200 MB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_helpers import ROOT, run_to_end, write_workflow

from interpreter import Client
from interpreter.client import load_definition

MB_TEXT = "'x' * 1000000"
BOMBS = {
    "center": "{{ 'x'|center(700000000)|length }}",
    "indent": "{{ ('x\\n' * 1000)|indent(1000000)|length }}",
    "percent_format": "{{ '%0700000000d'|format(1)|length }}",
    "percent_operator": "{{ ('%0700000000d' % 1)|length }}",
    "str_format": "{{ '{:>700000000}'.format('x')|length }}",
    "ljust": "{{ 'x'.ljust(700000000)|length }}",
    "rjust": "{{ 'x'.rjust(700000000)|length }}",
    "replace": f"{{{{ ({MB_TEXT})|replace('x', 'xxxxxxxxxx')|length }}}}",
    "replace_method": f"{{{{ ({MB_TEXT}).replace('', 'yyyy')|length }}}}",
    "expandtabs": "{{ ('\\t' * 1000).expandtabs(1000000)|length }}",
    "join": f"{{{{ range(700)|map('string')|join({MB_TEXT})|length }}}}",
    "join_method": f"{{{{ ({MB_TEXT}).join(['a', 'b', 'c', 'd', 'e'])|length }}}}",
    "dict_fromkeys": f"{{{{ dict.fromkeys(range(100000), {MB_TEXT})|tojson|length }}}}",
    "string_times_int": f"{{{{ ({MB_TEXT} * 700)|length }}}}",
    "list_times_int": f"{{{{ ([{MB_TEXT}] * 700)|tojson|length }}}}",
    "plus_in_loop": f"{{% set s = {MB_TEXT} %}}{{% for i in range(1400) %}}{{{{ s + 'y' }}}}{{% endfor %}}",
    "tilde_in_loop": f"{{% set s = {MB_TEXT} %}}{{% for i in range(1400) %}}{{{{ s ~ s }}}}{{% endfor %}}",
    "plus_in_recursion": (
        "{% macro grow(s, n) %}{{ grow(s + s, n - 1) if n else s|length }}{% endmacro %}"
        "{{ grow('x' * 1000, 30) }}"
    ),
    "output_in_loop": f"{{% set s = {MB_TEXT} %}}{{% for i in range(1400) %}}{{{{ s }}}}{{% endfor %}}",
    "list_in_output": f"{{% set l = [{MB_TEXT}] %}}x{{{{ l + l + l }}}}",
    "nested_lists_in_result": (
        f"{{% set a = [{MB_TEXT}] %}}{{% set b = [a, a, a, a, a, a, a, a, a, a] %}}"
        "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{{ [c, c, c] }}"
    ),
    "format_of_a_list": "{{ ['%0700000000d']|format(1)|length }}",
    "bytes_times_int": "{{ ('x'.encode() * 700000000)|length }}",
    "bytes_center": "{{ 'x'.encode().center(700000000)|length }}",
    "nested_lists": (
        f"{{% set a = [{MB_TEXT}] %}}{{% set b = [a, a, a, a, a, a, a, a, a, a] %}}"
        "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{{ c|string|length }}"
    ),
}


def _workflow(tmp: Path, name: str, template: str) -> Path:
    return write_workflow(
        tmp,
        f"name: {name}\nstates:\n  bomb: {{type: succeed, output: {template!r}}}",
        f"{name}.yaml",
    )


def _assert_failed_cleanly(status: str, error: dict[str, str] | None) -> None:
    assert status == "failed"
    assert error is not None
    assert error["type"] in ("ExpressionLimit", "ExpressionError"), error
    assert error["message"].startswith("state 'bomb', output: "), error["message"]


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_template_cannot_build_a_huge_value(client: Client, tmp_path: Path, name: str) -> None:
    run = run_to_end(client, _workflow(tmp_path, name, BOMBS[name]))
    _assert_failed_cleanly(run.status, run.error)


def test_values_within_the_limits_are_still_built(client: Client, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """
        name: fine
        states:
          done:
            type: succeed
            output:
              centered: "{{ 'ab'|center(6) }}"
              indented: "{{ 'a\\nb'|indent(2) }}"
              padded: "{{ '%05d'|format(42) }}"
              formatted: "{{ '{:>4}|{}'.format('a', 'b') }}"
              joined: "{{ ['a', 'b']|join('-') }}"
              replaced: "{{ 'a-b'|replace('-', '+') }}"
              keys: "{{ dict.fromkeys(['a', 'b'], 0) }}"
              repeated: "{{ ['a'] * 3 }}"
              grown: "{{ ('x' * 400000 + 'y' * 400000)|length }}"
        """,
    )
    run = run_to_end(client, wf)
    assert run.status == "completed", run.error
    assert run.output == {
        "centered": "  ab  ",
        "indented": "a\n  b",
        "padded": "00042",
        "formatted": "   a|b",
        "joined": "a-b",
        "replaced": "a+b",
        "keys": {"a": 0, "b": 0},
        "repeated": ["a", "a", "a"],
        "grown": 800000,
    }


def test_a_worker_running_every_bomb_stays_under_200_mb(store_url: str, tmp_path: Path) -> None:
    with Client(store_url) as client:
        ids = [
            client.start(load_definition(_workflow(tmp_path, name, text)), None, run_id=name)
            for name, text in BOMBS.items()
        ]
        env = {**os.environ}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        err = open(tmp_path / "worker.err", "wb")  # noqa: SIM115 - the child owns it
        worker = subprocess.Popen(
            [sys.executable, "-m", "interpreter", "worker", "--db", store_url],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        err.close()
        try:
            deadline = time.monotonic() + 120
            while any(client.get(run_id).status == "running" for run_id in ids):
                assert worker.poll() is None, (tmp_path / "worker.err").read_text()
                assert time.monotonic() < deadline, "the worker did not finish the runs"
                time.sleep(0.05)
            for run_id in ids:
                run = client.get(run_id)
                _assert_failed_cleanly(run.status, run.error)
            # The peak of the worker's own image: VmHWM starts again at exec. (wait4's
            # ru_maxrss also counts the moment between fork and exec, when the child still
            # is this test process: in a long suite that is this process's size.)
            peak_mb = _peak_rss_mb(worker.pid)
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    assert worker.returncode == 0, (tmp_path / "worker.err").read_text()
    assert peak_mb < 200, f"the worker's peak RSS was {peak_mb:.0f} MB"


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")
