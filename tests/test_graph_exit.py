"""Graph export of exit handlers (a cluster, one inner cluster per outcome) and of retry
policies by error (one line per policy on the activity's box), in Mermaid and DOT."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli
from run_helpers import assert_clean

from dsl.graph import describe, to_dot, to_mermaid
from dsl.loader import load_file
from dsl.model import Workflow

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "order_notify.yaml"


def _sample() -> Workflow:
    loaded = load_file(SAMPLE)
    assert loaded.document is not None
    return Workflow.model_validate(loaded.document.data)


def test_exit_handlers_are_one_cluster_with_a_machine_per_outcome() -> None:
    diagram = describe(_sample())
    [outer] = [c for c in diagram.root.clusters if c.label.startswith("on_exit")]
    assert [c.label for c in outer.clusters] == [
        "on_exit: success",
        "on_exit: failure, within 1m",
        "on_exit: cancel",
        "on_exit: always",
    ]
    for inner in outer.clusters:
        kinds = [n.kind for n in inner.nodes]
        assert kinds[0] == "start" and kinds[-1] == "end"
        ids = {n.id for n in inner.nodes}
        # start -> the handler's state -> end, all inside the handler's cluster
        assert sum(1 for e in diagram.edges if e.source in ids and e.target in ids) == 2


def test_retry_policies_by_error_show_on_the_activity() -> None:
    diagram = describe(_sample())
    [book] = [n for n in diagram.root.nodes if n.label[0] == "book"]
    assert book.label[2:] == [
        "retry CarrierBusy, 5 attempts if error.details.status == 429",
        "retry ServiceUnavailable, 3 attempts",
        "retry *, 1 attempt",
    ]
    [charge] = [n for n in diagram.root.nodes if n.label[0] == "charge"]
    assert charge.label[2:] == ["retry: 3 attempts, after 10ms, ≤ 100ms (default)"]


def test_both_formats_carry_the_handlers_and_the_policies() -> None:
    workflow = _sample()
    mermaid, dot = to_mermaid(workflow), to_dot(workflow)
    for text in (mermaid, dot):
        assert "on_exit: failure, within 1m" in text
        assert "retry ServiceUnavailable, 3 attempts" in text
    assert mermaid.count("subgraph") == 5
    assert dot.count("subgraph cluster") == 5


def test_cli_draws_the_sample() -> None:
    proc = run_cli("graph", str(SAMPLE), "--format", "dot")
    assert_clean(proc, 0)
    assert "on_exit (after the run ends)" in proc.stdout
