"""`--help` of every command: a description, at least one example, a description of every
argument; "did you mean" for misspelt commands, flags and choices; shell completion scripts
(the bash one sourced in a real bash)."""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess

import pytest
from conftest import ROOT, run_cli
from run_helpers import assert_clean

from interpreter.cli import COMMAND_MODULE as COMMAND_MODULE_OF
from interpreter.cli import build_parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


COMMANDS = sorted(_subcommands())


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_description_an_example_and_described_arguments(name: str) -> None:
    sub = _subcommands()[name]
    assert sub.description, f"{name} has no description"
    text = sub.format_help()
    assert "examples:" in text and f"tideflow {name}" in text.split("examples:", 1)[1], text
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name}: {action.option_strings or action.dest} has no help"


def test_the_command_table_names_the_module_that_registers_each_command() -> None:
    """`tideflow COMMAND` builds only the parsers of COMMAND's module (COMMAND_MODULE): the
    table must list every command, under the module that registers it."""
    registered: dict[str, str] = {}
    for module in dict.fromkeys(COMMAND_MODULE_OF.values()):
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(subparsers)
        registered.update(dict.fromkeys(subparsers.choices, module))
    assert registered == COMMAND_MODULE_OF
    assert set(COMMAND_MODULE_OF) == set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_alone_gets_the_same_parser_as_with_all_the_others(name: str) -> None:
    alone = build_parser(name)
    subparsers = next(a for a in alone._actions if isinstance(a, argparse._SubParsersAction))
    assert list(subparsers.choices) == [
        other for other, module in COMMAND_MODULE_OF.items() if module == COMMAND_MODULE_OF[name]
    ]
    assert subparsers.choices[name].format_help() == _subcommands()[name].format_help()


def test_help_of_a_command_from_a_real_process() -> None:
    proc = run_cli("list", "--help")
    assert_clean(proc, 0)
    assert "examples:" in proc.stdout and "--cursor" in proc.stdout


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (("stauts", "r1"), "did you mean 'status'?"),
        (("prnue",), "did you mean 'prune'?"),
        (("list", "--limt", "3"), "--limt: did you mean --limit?"),
        (("history", "r1", "--folow"), "--folow: did you mean --follow?"),
        (("list", "--output", "jsnl"), "did you mean 'jsonl'?"),
    ],
)
def test_misspelt_commands_flags_and_choices_get_a_suggestion(
    args: tuple[str, ...], suggestion: str
) -> None:
    proc = run_cli(*args)
    assert_clean(proc, 2)
    assert suggestion in proc.stderr


def test_input_that_names_a_file_without_the_at_sign_suggests_it(tmp_path: object) -> None:
    wf = ROOT / "samples" / "order.yaml"
    given = str(ROOT / "samples" / "inputs" / "order.json")
    proc = run_cli("start", str(wf), "--input", given, "--db", str(ROOT / "nowhere" / "x.db"))
    assert_clean(proc, 2)
    assert f"--input @{given}" in proc.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_bash_completion_completes_commands_and_flags() -> None:
    script = run_cli("completion", "bash")
    assert_clean(script, 0)
    probe = f"""
source /dev/stdin <<'TIDEFLOW_EOF'
{script.stdout}
TIDEFLOW_EOF
COMP_WORDS=(tideflow sta); COMP_CWORD=1; _tideflow; echo "1:${{COMPREPLY[*]}}"
COMP_WORDS=(tideflow list --cur); COMP_CWORD=2; _tideflow; echo "2:${{COMPREPLY[*]}}"
COMP_WORDS=(tideflow prune --); COMP_CWORD=2; _tideflow; echo "3:${{COMPREPLY[*]}}"
complete -p tideflow
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = dict(
        line.split(":", 1) for line in done.stdout.splitlines() if line[:2] in ("1:", "2:", "3:")
    )
    assert set(lines["1"].split()) == {"start", "status"}
    assert lines["2"].split() == ["--cursor"]
    assert {"--older-than", "--dry-run", "--yes"} <= set(lines["3"].split())
    assert "complete -F _tideflow tideflow" in done.stdout


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_name_every_command(shell: str) -> None:
    script = run_cli("completion", shell)
    assert_clean(script, 0)
    for name in COMMANDS:
        assert name in script.stdout
    checker = shutil.which(shell)
    if checker:  # the shell's own syntax check, where that shell is installed
        flag = ["-n"] if shell == "zsh" else ["--no-execute"]
        done = subprocess.run(
            [checker, *flag], input=script.stdout, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    proc = run_cli("completion", "powershell")
    assert_clean(proc, 2)
    assert "invalid choice: 'powershell'" in proc.stderr and "bash" in proc.stderr
