"""`validate`: check workflow files (schema, model, lint); `schema`: print the JSON Schema."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from interpreter import collector
from interpreter.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    parse_json_arg,
    workflow_dirs,
)

WORKFLOW_SUFFIXES = (".yaml", ".yml", ".json")
_SKIPPED_DIRS = {".venv", "venv", "node_modules", "__pycache__"}
# A file found by walking a directory is checked only when it declares `dsl:` at some level:
# directories also hold run inputs, CI configs and other YAML/JSON that are not workflows.
_DECLARES_DSL = re.compile(r"""(?m)(?:^|[{,])\s*["']?dsl["']?\s*:""")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check workflow files (YAML or JSON) without running them",
        description=(
            "Check workflow files: YAML/JSON syntax, the JSON Schema, the typed model and the "
            "lint rules. Directories are searched recursively for .yaml, .yml and .json files "
            "that declare dsl: (hidden directories and .venv are skipped). Exit status: 0 no "
            "errors, 1 errors found (or warnings with --strict), 2 usage or I/O error."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="workflow files or directories")
    parser.add_argument(
        "--format",
        choices=("text", "json", "github", "sarif"),
        default="text",
        help="text (default), json, github (Actions annotations) or sarif (code scanning)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail (exit 1) on warnings too, not only errors"
    )
    parser.add_argument(
        "--activities",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="a .py file or module that registers activities; activity names are then checked "
        "(repeatable)",
    )
    parser.add_argument(
        "--workflows",
        action="append",
        default=[],
        metavar="DIR",
        help="where child workflows are looked up by name (repeatable)",
    )
    parser.add_argument(
        "--input",
        metavar="JSON|@FILE",
        help="also check this run input against each workflow's input_schema",
    )
    parser.add_argument(
        "--only-workflows",
        action="store_true",
        help="skip named files that do not declare dsl: too, not only files found in "
        "directories; no workflow at all is then not an error (the pre-commit hook uses this)",
    )
    parser.set_defaults(handler=cmd_validate)

    schema = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of workflow files",
        description="Print the JSON Schema (draft 2020-12) that workflow files follow, or write "
        "it to a file that editors can point at (docs/editors.md). Example: tideflow schema "
        "--output .tideflow/workflow.schema.json",
    )
    schema.add_argument(
        "--output",
        metavar="FILE",
        help="write the schema to FILE (its directory is created) instead of stdout",
    )
    schema.set_defaults(handler=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    from dsl import load_schema

    text = json.dumps(load_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        _write(text)
        return EXIT_OK
    target = Path(args.output)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)  # an editor never reads half a schema
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise CliError(
            f"cannot write the schema to {args.output}: {exc.strerror or exc}",
            hint="choose a file in a directory you can write to",
            exit_code=EXIT_USAGE,
        ) from None
    print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def _write(text: str) -> None:
    """Write to stdout; a reader that stops early (`| head`) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def cmd_validate(args: argparse.Namespace) -> int:
    # A short batch that keeps every file's result until it prints them: the collector has
    # next to nothing to find in what it imports and builds (interpreter/collector.py).
    with _pydantic_plugins_off(), collector.start_up():
        return _validate(args)


# pydantic's documented switch for its plugins (PYDANTIC_DISABLE_PLUGINS).
_PLUGINS_SWITCH = "PYDANTIC_DISABLE_PLUGINS"


@contextlib.contextmanager
def _pydantic_plugins_off() -> Iterator[None]:
    """Without plugins, building the workflow model's validator does not scan the entry points
    of every installed distribution for pydantic plugins (a few ms, more in a large
    environment). Safe here, and only here: pydantic plugins observe validation (tracing,
    metrics), and `validate` runs no activity and no user code but the --activities modules
    it imports to read their names, whose models it never validates. The worker and the
    library keep them. A switch the user set is left as it is; the one set here is removed
    again afterwards, for callers that run commands in their own process (tests)."""
    if _PLUGINS_SWITCH in os.environ:
        yield
        return
    os.environ[_PLUGINS_SWITCH] = "__all__"
    try:
        yield
    finally:
        os.environ.pop(_PLUGINS_SWITCH, None)


def _validate(args: argparse.Namespace) -> int:
    from dsl import validate_file
    from dsl.formatters import FORMATTERS
    from dsl.validate import _MISSING

    files, skipped = collect_files(args.paths, only_workflows=args.only_workflows)
    # `*.test.yaml` files (tideflow test) are checked against their own model.
    tests = [p for p in [*files, *skipped] if p.name.endswith(TEST_SUFFIX)]
    files = [p for p in files if not p.name.endswith(TEST_SUFFIX)]
    skipped = [p for p in skipped if not p.name.endswith(TEST_SUFFIX)]
    files_ok = bool(files or tests)
    if not files_ok and args.only_workflows:
        print(f"note: no workflow files among {len(skipped)} file(s)", file=sys.stderr)
        return EXIT_OK
    if not files_ok:
        where = ", ".join(args.paths)
        raise CliError(
            f"no workflow files found in {where}",
            hint="pass .yaml, .yml or .json files, or directories holding files with dsl:",
        )
    input_data: object = _MISSING if args.input is None else parse_json_arg(args.input, "--input")
    activities = load_activities(args.activities) if args.activities else None
    dirs = list(workflow_dirs(args.workflows))
    results = [
        validate_file(path, activities=activities, workflow_dirs=dirs, input_data=input_data)
        for path in files
    ]
    results.extend(_children_of(results, files, activities, dirs))
    results.extend(_test_files(tests))
    _write(FORMATTERS[args.format](results))
    if skipped:
        example = f"e.g. {skipped[0]}" + (
            f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        )
        print(
            f"note: skipped {len(skipped)} .yaml/.yml/.json file(s) without a dsl: key "
            f"(not workflows), {example}",
            file=sys.stderr,
        )
    if any(d.code == "TF010" for r in results for d in r.diagnostics):
        return EXIT_USAGE
    failed = any(d.severity.value == "error" or args.strict for r in results for d in r.diagnostics)
    return EXIT_FAILED if failed else EXIT_OK


TEST_SUFFIX = ".test.yaml"


def _test_files(paths: list[Path]) -> list[Any]:
    if not paths:  # dsl.testfile (its own pydantic models) is imported only when needed
        return []
    from dsl.testfile import load_test_file
    from dsl.validate import ValidationResult

    return [ValidationResult(str(p), None, None, load_test_file(p)[1]) for p in paths]


def _children_of(
    results: list[Any], files: list[Path], activities: set[str] | None, dirs: list[Path]
) -> list[Any]:
    """The validation of every child workflow the checked files start (by name or path, and
    their children in turn) that was not checked already, so a child's own diagnostics are
    reported under the child's file."""
    from dsl import validate_file
    from dsl.resolve import child_references, resolve_child_workflow
    from dsl.template_text import is_template

    seen = {path.resolve() for path in files}
    found: list[Any] = []
    pending = list(results)
    while pending:
        result = pending.pop(0)
        parent = Path(result.file)
        if result.document is None or not parent.is_file():
            continue
        for reference in child_references(result.document.data):
            if is_template(reference):
                continue
            target = resolve_child_workflow(reference, parent.resolve().parent, dirs)
            if target is None or target in seen:
                continue
            seen.add(target)
            child = validate_file(_shown(target), activities=activities, workflow_dirs=dirs)
            found.append(child)
            pending.append(child)
    return found


def _shown(path: Path) -> Path:
    """`path` relative to the current directory when it is under it (as the user would type
    it), else as it is."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def collect_files(
    paths: Sequence[str], *, only_workflows: bool = False
) -> tuple[list[Path], list[Path]]:
    """(files to check, files skipped because they do not declare dsl:). Files named on the
    command line are checked whatever they hold unless `only_workflows`; missing paths are a
    usage error."""
    files: list[Path] = []
    skipped: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in _walk(path):
                if found.resolve() in seen:
                    continue
                seen.add(found.resolve())
                (files if _declares_dsl(found) else skipped).append(found)
        elif path.exists():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                (files if not only_workflows or _declares_dsl(path) else skipped).append(path)
        else:
            raise CliError(f"{raw}: no such file or directory", hint="check the path")
    return files, skipped


def _walk(root: Path) -> Iterable[Path]:
    found: list[Path] = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in sorted(names):
            if name.endswith(WORKFLOW_SUFFIXES) and not name.startswith("."):
                found.append(Path(directory) / name)
    return found


def _declares_dsl(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024 * 1024)
    except OSError:
        return True  # let validation report why it cannot be read
    return declares_dsl(head.decode("utf-8", "replace"))


def declares_dsl(text: str) -> bool:
    """Whether `text` has a `dsl:` key at some level (workflow files do; other YAML not)."""
    return _DECLARES_DSL.search(text) is not None


def load_activities(specs: Sequence[str]) -> set[str]:
    try:
        from interpreter.activities import load_activity_modules
    except ImportError:
        raise CliError(
            "--activities is not available: the activity registry (interpreter.activities) "
            "is missing from this installation"
        ) from None
    from interpreter.errors import TideflowError

    try:
        return set(load_activity_modules(specs))
    except TideflowError as exc:
        raise CliError(exc.message, hint=exc.hint) from None
