"""`tideflow test PATH...`: run the cases of `*.test.yaml` files (interpreter/testing.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run workflow test cases (*.test.yaml) on virtual time with mocked activities",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="test files or directories")
    parser.add_argument("-k", dest="only", metavar="TEXT", help="only cases whose name has TEXT")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    parser.add_argument("--coverage", action="store_true", help="print state coverage")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from interpreter.test_coverage import table
    from interpreter.testing import run_paths

    report = run_paths([Path(p) for p in args.paths], only=args.only)
    if args.junit:
        Path(args.junit).write_text(junit(report), encoding="utf-8")
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        if report.invalid:
            from dsl.formatters import format_text
            from dsl.validate import ValidationResult

            files = sorted({d.file for d in report.invalid})
            results = [
                ValidationResult(f, None, None, [d for d in report.invalid if d.file == f])
                for f in files
            ]
            print(format_text(results), end="")
        print(report.text())
        if args.coverage and report.coverage:
            print(table(report.coverage))
    return report.exit_code()


def junit(report: object) -> str:
    from xml.sax.saxutils import escape, quoteattr

    from interpreter.testing import Report

    assert isinstance(report, Report)
    failures = sum(not c.ok for c in report.cases)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuite name="tideflow" tests="{len(report.cases)}" failures="{failures}">',
    ]
    for c in report.cases:
        out.append(f"  <testcase classname={quoteattr(c.workflow)} name={quoteattr(c.name)}>")
        if not c.ok:
            out.append(
                f"    <failure message={quoteattr(c.failures[0])}>"
                f"{escape(chr(10).join(c.failures))}</failure>"
            )
        out.append("  </testcase>")
    out.append("</testsuite>")
    return "\n".join(out) + "\n"
