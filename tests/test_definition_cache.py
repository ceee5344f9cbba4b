"""Client.start does not validate a file again when its bytes have not changed, and does
validate it again (and refuse it) the moment they have."""

from __future__ import annotations

from pathlib import Path

import pytest

import dsl
from interpreter import Client
from interpreter.errors import WorkflowInvalid

FLOW = """\
dsl: "1.0"
name: cached
states:
  done: {type: succeed, output: {n: "{{ input.n }}"}}
"""


def test_unchanged_file_is_validated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cached.yaml"
    path.write_text(FLOW)
    calls: list[str] = []
    real = dsl.validate_file

    def counting(file: object, **kwargs: object) -> object:
        calls.append(str(file))
        return real(file, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dsl, "validate_file", counting)
    with Client(str(tmp_path / "store.db")) as client:
        ids = [client.start(path, {"n": n}) for n in range(5)]
        assert len(calls) == 1
        assert [client.execute(i).output for i in ids] == [{"n": n} for n in range(5)]

        path.write_text(FLOW.replace("n: ", "m: "))  # same size class, new bytes
        changed = client.start(path, {"n": 9})
        assert len(calls) == 2
        assert client.execute(changed).output == {"m": 9}

        path.write_text(FLOW.replace("type: succeed", "type: succeeed"))
        with pytest.raises(WorkflowInvalid):
            client.start(path, {"n": 1})
        with pytest.raises(WorkflowInvalid):  # an invalid file is never cached
            client.start(path, {"n": 1})
        assert len(calls) == 4
