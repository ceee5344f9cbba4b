"""Inputs at and past their limits: numeric flags outside their documented range, @FILE values
that never end, a --db this user may not enter. Each is one clear message, exit 2, no
traceback, nothing stored."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, run_cli
from run_helpers import assert_clean, cli_env

ORDER = SAMPLES / "order.yaml"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--concurrency", "99999999999999999999", "from 1 to 10,000"),
        ("--concurrency", "0", "from 1 to 10,000"),
        ("--concurrency", "lots", "from 1 to 10,000"),
        ("--grace", "1e308", "from 0 to 86,400"),
        ("--grace", "-1", "from 0 to 86,400"),
        ("--grace", "nan", "from 0 to 86,400"),
    ],
)
def test_numeric_flags_outside_their_range(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    proc = run_cli("worker", f"{flag}={value}", "--db", str(tmp_path / "s.db"), timeout=30)
    assert_clean(proc, 2)
    assert flag in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "s.db").exists()


def test_the_largest_documented_values_are_accepted(tmp_path: Path) -> None:
    proc = run_cli(
        "worker", "--concurrency=10000", "--grace=86400", "--db", str(tmp_path / "s.db"),
        "--help",
    )  # fmt: skip
    assert_clean(proc, 0)


@pytest.mark.parametrize("source", ["/dev/zero", "big"])
def test_an_input_file_past_the_limit_is_refused_without_reading_it(
    tmp_path: Path, source: str
) -> None:
    path = source
    if source == "big":
        big = tmp_path / "big.json"
        big.write_text('"' + "x" * (3 * 1024 * 1024) + '"')
        path = str(big)
    db = tmp_path / "s.db"
    proc = run_cli("start", str(ORDER), "--input", f"@{path}", "--db", str(db), timeout=30)
    assert_clean(proc, 2)
    assert "larger than 2 MiB" in proc.stderr, proc.stderr
    assert not db.exists()


def test_signal_data_past_the_limit_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    started = run_cli(
        "start", str(ORDER), "--input", "@" + str(SAMPLES / "inputs" / "order.json"),
        "--db", str(db),
    )  # fmt: skip
    assert_clean(started, 0)
    proc = run_cli("signal", started.stdout.strip(), "x", "--data", "@/dev/zero", "--db", str(db))
    assert_clean(proc, 2)
    assert "larger than 2 MiB" in proc.stderr, proc.stderr


@pytest.fixture
def locked_dir() -> Iterator[Path]:
    """A directory this test's commands may not enter: owned by nobody, mode 700, with the
    commands run as root without the capabilities that ignore file permissions."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a command that file permissions apply to")
    top = Path(tempfile.mkdtemp(prefix="tideflow-perm-"))
    top.chmod(0o755)
    locked = top / "locked"
    locked.mkdir()
    os.chown(locked, 65534, 65534)
    locked.chmod(0o700)
    yield locked
    shutil.rmtree(top)


def _unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
            sys.executable,
            "-m",
            "interpreter",
            *args,
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize(
    "command",
    [("list",), ("status", "r1"), ("start", str(ORDER), "--input", "{}"), ("worker",)],
    ids=lambda c: c[0],
)
def test_a_store_in_a_directory_this_user_cannot_enter(
    locked_dir: Path, command: tuple[str, ...]
) -> None:
    proc = _unprivileged(*command, "--db", str(locked_dir / "store.db"))
    assert_clean(proc, 2)
    assert "cannot open the store" in proc.stderr and "Permission denied" in proc.stderr
    assert "hint:" in proc.stderr
