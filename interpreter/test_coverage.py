"""Coverage for `tideflow test --coverage`: which states, transitions, catch clauses, retries
and compensations of each workflow the cases exercised (from their histories)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsl.testfile import LoadedTests
    from interpreter.testing import CaseResult


def coverage(files: list[LoadedTests], cases: list[CaseResult]) -> dict[str, dict[str, Any]]:
    from dsl.loader import load_file
    from dsl.testfile import all_states

    out: dict[str, dict[str, Any]] = {}
    for tests in files:
        wf = tests.workflow_path()
        doc = load_file(wf).document
        states = all_states(doc.data if doc else {})
        entry = out.setdefault(
            wf.stem,
            {
                "states": sorted(states),
                "entered": set(),
                "transitions": set(),
                "catches": set(),
                "retries": set(),
                "compensations": set(),
            },
        )
        for case in cases:
            if case.file != str(tests.path):
                continue
            entry["entered"].update(s for s in case.states if s in states)
            entry["transitions"].update(zip(case.states, case.states[1:], strict=False))
            for e in case.events:
                if e["type"] == "ErrorCaught":
                    entry["catches"].add(e.get("state"))
                elif e["type"] == "RetryScheduled":
                    entry["retries"].add(e.get("state"))
                elif e["type"] == "CompensationStarted":
                    entry["compensations"].add(e.get("state"))
    for name, entry in out.items():
        total = len(entry["states"])
        entered = entry.pop("entered")
        out[name] = {
            "states_total": total,
            "states_covered": len(entered),
            "states_percent": round(100.0 * len(entered) / total, 1) if total else 100.0,
            "states_missed": sorted(set(entry["states"]) - entered),
            "transitions": len(entry["transitions"]),
            "catch_clauses": sorted(str(s) for s in entry["catches"]),
            "retries": sorted(str(s) for s in entry["retries"]),
            "compensations": sorted(str(s) for s in entry["compensations"]),
        }
    return out


def table(cov: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'workflow':<22} {'states':>9} {'%':>6} {'trans':>5} {'catch':>5} "
        f"{'retry':>5} {'comp':>5}  missed"
    ]
    for name, c in sorted(cov.items()):
        lines.append(
            f"{name:<22} {c['states_covered']:>4}/{c['states_total']:<4} "
            f"{c['states_percent']:>6} {c['transitions']:>5} {len(c['catch_clauses']):>5} "
            f"{len(c['retries']):>5} {len(c['compensations']):>5}  " + ", ".join(c["states_missed"])
        )
    return "\n".join(lines)
