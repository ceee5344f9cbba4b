"""What `--help` says beyond each command's arguments: a description when a command has none,
examples for every command, and "did you mean" for misspelt commands, flags and choices."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from interpreter.cli import _ux

# Examples of the commands whose modules do not give their own (an epilog).
EXAMPLES: dict[str, list[str]] = {
    "validate": [
        "tideflow validate samples/",
        "tideflow validate order.yaml --strict --format github",
    ],
    "graph": [
        "tideflow graph samples/order.yaml --format mermaid",
        "tideflow graph order.yaml --format dot -o order.dot",
    ],
    "schema": ["tideflow schema > workflow.schema.json"],
    "run": [
        "tideflow run samples/order.yaml --input @samples/inputs/order.json --activities samples/activities.py",
        "tideflow run flow.yaml --input '{\"n\": 3}' --id nightly-2026-12-02 --json",
    ],
    "start": [
        "tideflow start samples/order.yaml --input @samples/inputs/order.json",
        "tideflow start flow.yaml --id nightly-2026-12-02 --json",
    ],
    "compensate": [
        "tideflow compensate booking_hold-1a2b3c",
        "tideflow compensate booking_hold-1a2b3c --yes --json",
        "tideflow compensate --workflow booking_hold --error PaymentDeclined --since 1d --yes",
    ],
    "resume": ["tideflow resume order-1a2b3c --activities samples/activities.py"],
    "worker": [
        "tideflow worker --activities samples/activities.py",
        "tideflow worker --activities myapp.activities --concurrency 50 --log-format json",
    ],
    "status": ["tideflow status order-1a2b3c", "tideflow status order-1a2b3c --watch --relative"],
    "history": [
        "tideflow history order-1a2b3c",
        "tideflow history order-1a2b3c --follow",
        "tideflow history order-1a2b3c --json | jq '.[].type'",
    ],
    "signal": [
        'tideflow signal approval-1a2b3c approve --data \'{"approved": true, "by": "ana"}\''
    ],
    "query": ["tideflow query approval-1a2b3c status"],
    "complete": [
        'tideflow complete "$TOKEN" --result \'{"approved": true}\'',
        "tideflow complete \"$TOKEN\" --error Declined --message 'card refused'",
    ],
    "heartbeat": ['tideflow heartbeat "$TOKEN" --details \'{"done": 40}\''],
    "update": [
        'tideflow update order-1a2b3c add_item --data \'{"sku": "KB-01"}\'',
        "tideflow update order-1a2b3c add_item --data @item.json --id add-1 --timeout 30 --json",
    ],
    "test": [
        "tideflow test samples/",
        "tideflow test samples/tests/order.test.yaml --coverage --junit report.xml",
    ],
    "lsp": [
        "tideflow lsp --activities samples/activities.py",
        "tideflow lsp --workflows workflows/   # children by name",
    ],
    "completion": [
        'eval "$(tideflow completion bash)"',
        "tideflow completion fish > ~/.config/fish/completions/tideflow.fish",
    ],
}


# What an argument is, where the command that defines it says nothing.
ARGUMENT_HELP = {
    "token": "the callback token the activity handed out",
    "run_id": "the run",
}


def add_examples(subparsers: Any) -> None:
    """Give every subcommand a description and examples (those that have none yet), and
    every argument a description."""
    for name, parser in subparsers.choices.items():
        for action in parser._actions:
            if action.help is None and action.dest in ARGUMENT_HELP:
                action.help = ARGUMENT_HELP[action.dest]
        if parser.description is None:
            parser.description = _help_of(subparsers, name)
        if parser.epilog is None and name in EXAMPLES:
            parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])
            parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _help_of(subparsers: Any, name: str) -> str | None:
    for action in subparsers._choices_actions:
        if action.dest == name:
            text: str | None = action.help
            return None if text is None else text[0].upper() + text[1:] + "."
    return None


_INVALID_CHOICE = r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)"


def _choices(text: str) -> list[str]:
    return [c.strip().strip("'\"") for c in text.split(",")]


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" on misspelt commands, choices and flags."""

    def error(self, message: str) -> NoReturn:
        import re  # only on a mistake

        match = re.search(_INVALID_CHOICE, message)
        if match:
            close = _ux.did_you_mean(match.group(2), _choices(match.group(3)))
            if close:
                message += f"\n  hint: did you mean {close!r}?"
        elif message.startswith("unrecognized arguments:"):
            hints = []
            for word in message.split(":", 1)[1].split():
                flag = word.split("=", 1)[0]
                if flag.startswith("-"):
                    close = _ux.did_you_mean(flag, self._option_strings())
                    if close:
                        hints.append(f"{flag}: did you mean {close}?")
            if hints:
                message += "\n  hint: " + "; ".join(hints)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _option_strings(self) -> list[str]:
        return [s for action in self._actions for s in action.option_strings]


def subparser_of(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The parser of `command` (the top parser when unknown)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser
