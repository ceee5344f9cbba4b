"""After a handled Ctrl-C the CLI ends with status 130 even when another SIGINT is pending as
it exits (CI once saw -2, death by the signal, after the `interrupted` message was printed).
The race cannot be produced on demand, so the child process below makes it certain: its
command returns 130 and the first signal.signal call then raises KeyboardInterrupt, as a
pending SIGINT under Python's default handler does there."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import signal
    import interpreter.cli as cli
    from interpreter.cli import _common

    real_signal = signal.signal
    raised = []

    def pending_then_signal(signum, handler):
        if signum == signal.SIGINT and handler is signal.SIG_IGN and not raised:
            raised.append(True)
            raise KeyboardInterrupt  # what the pending SIGINT's default handler does
        return real_signal(signum, handler)

    signal.signal = pending_then_signal
    cli.main = lambda argv=None: _common.EXIT_INTERRUPTED
    cli.console_main()
    """
)

RETURNS_THEN_INTERRUPTED = textwrap.dedent(
    """
    import interpreter.cli as cli

    def main(argv=None):
        raise KeyboardInterrupt  # as if it landed after main's own handler

    cli.main = main
    cli.console_main()
    """
)


def _status(code: str) -> int:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


def test_a_sigint_pending_as_the_cli_exits_keeps_status_130() -> None:
    assert _status(CHILD) == 130


def test_a_keyboard_interrupt_past_main_ends_with_status_130() -> None:
    assert _status(RETURNS_THEN_INTERRUPTED) == 130
