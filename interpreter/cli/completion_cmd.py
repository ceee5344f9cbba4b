"""`tideflow completion bash|zsh|fish`: a shell completion script made from the parser itself,
so it always knows every command and flag."""

from __future__ import annotations

import argparse
from typing import Any

from interpreter.cli._common import EXIT_OK


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a script that completes tideflow's commands and flags. Load it "
        "from your shell's start-up file.",
    )
    parser.add_argument(
        "shell", choices=("bash", "zsh", "fish"), help="the shell: bash, zsh or fish"
    )
    parser.set_defaults(handler=cmd_completion)


def _commands() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Every command: its help and its (flag, help) pairs."""
    from interpreter.cli import build_parser

    parser = build_parser()
    out: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                flags = [
                    (flag, (a.help or "").replace("%%", "%"))
                    for a in sub._actions
                    for flag in a.option_strings
                    if flag.startswith("--")
                ]
                out[name] = (helps.get(name, ""), flags)
    return out


def _bash(commands: dict[str, tuple[str, list[tuple[str, str]]]]) -> str:
    cases = "\n".join(
        f'        {name}) opts="{" ".join(f for f, _ in flags)}" ;;'
        for name, (_, flags) in sorted(commands.items())
    )
    return f"""# tideflow bash completion: eval "$(tideflow completion bash)"
_tideflow() {{
    local cur cmd opts
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{" ".join(sorted(commands))} --help --version" -- "$cur"))
        return 0
    fi
    cmd="${{COMP_WORDS[1]}}"
    case "$cmd" in
{cases}
        *) opts="" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
}}
complete -F _tideflow tideflow
"""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh(commands: dict[str, tuple[str, list[tuple[str, str]]]]) -> str:
    described = " ".join(
        _quote(f"{name}:{help_.replace(':', ' -')}")
        for name, (help_, _) in sorted(commands.items())
    )
    cases = "\n".join(
        f"        {name}) opts=({' '.join(_quote(f) for f, _ in flags)}) ;;"
        for name, (_, flags) in sorted(commands.items())
    )
    return f"""#compdef tideflow
# tideflow zsh completion: eval "$(tideflow completion zsh)" (after compinit)
_tideflow() {{
    local -a commands opts
    commands=({described})
    if (( CURRENT == 2 )); then
        _describe 'command' commands
        return
    fi
    case "$words[2]" in
{cases}
        *) opts=() ;;
    esac
    if [[ "$PREFIX" == -* ]]; then
        compadd -- $opts --help
    else
        _files
    fi
}}
compdef _tideflow tideflow
"""


def _fish(commands: dict[str, tuple[str, list[tuple[str, str]]]]) -> str:
    lines = [
        "# tideflow fish completion: tideflow completion fish > ~/.config/fish/completions/tideflow.fish",
        "complete -c tideflow -f",
    ]
    for name, (help_, flags) in sorted(commands.items()):
        lines.append(f"complete -c tideflow -n __fish_use_subcommand -a {name} -d {_quote(help_)}")
        for flag, flag_help in flags:
            lines.append(
                f"complete -c tideflow -n '__fish_seen_subcommand_from {name}' -l {flag[2:]} "
                f"-d {_quote(flag_help[:80])}"
            )
    return "\n".join(lines) + "\n"


def cmd_completion(args: argparse.Namespace) -> int:
    commands = _commands()
    script = {"bash": _bash, "zsh": _zsh, "fish": _fish}[args.shell](commands)
    print(script, end="")
    return EXIT_OK
