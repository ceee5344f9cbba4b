"""The table bench/engine.py prints from its results (kept apart: formatting only)."""

from __future__ import annotations

from typing import Any


def _ms(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f}, n={s['n']})"


def _s(s: dict[str, float]) -> str:
    return f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f}, n={s['n']})"


def report(results: dict[str, Any]) -> str:
    lines = []
    m = results["machine"]
    lines.append(
        f"tideflow engine benchmarks - {results['date']} - {m['cpus']} vCPU {m['cpu_model']}, Python {m['python']}, SQLite {m['sqlite']} (WAL, synchronous=NORMAL)"
    )
    if "w1" in results:
        r = results["w1"]
        lines.append("W1  10 sequential no-op steps, one run at a time (in-process)")
        lines.append(f"    per run ms          {_ms(r['noop10_ms'])}")
        lines.append(
            f"    per step ms         {r['per_step_ms']:.3f}   (async activity: {r['per_step_async_ms']:.3f})"
        )
        lines.append(f"    1-step run ms       {_ms(r['noop1_ms'])}")
        lines.append(
            f"    CPU per step ms     {r['cpu_per_step_ms']:.3f}   (engine overhead in CPU: {r['engine_overhead_cpu_per_step_ms']:.3f})"
        )
        lines.append(
            f"    engine overhead/step {r['engine_overhead_per_step_ms']:.3f} ms  ((10-step - 1-step) / 9; fixed cost per run {r['run_fixed_cost_ms']:.2f} ms)"
        )
    if "w2" in results:
        r = results["w2"]
        for v in r.values():
            if isinstance(v, dict) and "workflows" in v:
                lines.append(
                    f"W2  {v['workflows']} runs x 10 steps, one worker: {v['wf_per_s_median']:.1f} runs/s, {v['steps_per_s_median']:.0f} steps/s  (wall s {_s(v['wall_s'])}; starting them {v['start_s']['median']:.2f} s; CPU {v['cpu_ms_per_step']:.3f} ms/step, of which the worker {v['worker_cpu_us_per_step']:.0f} us)"
                )
                lines.append(
                    f"    peak RSS {v['peak_rss_mb']:.0f} MB (client + worker, one fresh process for this size)"
                )
    if "w2pg" in results:
        v = results["w2pg"]
        lines.append(
            f"W2  PostgreSQL, {v['workflows']} runs x 10 steps, one worker: {v['steps_per_s_median']:.0f} steps/s  (wall s {_s(v['wall_s'])}; worker CPU {v['worker_cpu_us_per_step']:.0f} us/step; {v['round_trips_per_step']:.2f} round trips/step)"
        )
    if "w3" in results:
        r = results["w3"]
        lines.append(
            f"W3  map of {r['fanout']} no-op steps in parallel + join: s {_s(r['wall_s'])}"
        )
    if "sleepers" in results:
        r = results["sleepers"]
        b, rest = r["store_bytes_live"], r["store_bytes"]
        lines.append(
            f"S   {r['runs']} runs sleeping at once: created in {r['create_s']:.1f} s, taken up and released in {r['pickup_s']:.1f} s ({r['asleep']} asleep)"
        )
        lines.append(
            f"    store {b['total'] / 1e6:.1f} MB on disk (db {b['db'] / 1e6:.1f} + WAL {b['db_wal'] / 1e6:.1f} + shm {b['db_shm'] / 1e6:.2f}), {rest['total'] / 1e6:.1f} MB at rest; {r['store_bytes_per_run'] / 1024:.1f} KiB per run; worker peak RSS {r['worker_rss_mb']:.0f} MB"
        )
        lines.append(
            f"    tideflow list {r['cli_list_s']:.2f} s, list --status running {r['cli_list_running_s']:.2f} s, status RUN {r['cli_status_s']:.2f} s (start-up alone {r['cli_version_s']:.2f} s)"
        )
    if "w4" in results:
        r = results["w4"]
        lines.append(
            f"W4  20 x 100 ms steps, kill -9 after 10: kill -> done s {_s(r['recovery_s_from_restart'])}; first step after restart {r['first_step_after_restart_s']['median']:.2f} s"
        )
        for run in r["runs"]:
            lines.append(
                f"    done before kill {run['steps_done_before_kill']}, re-executed completed steps {run['completed_steps_reexecuted']}, executed more than once {run['steps_executed_more_than_once']}, executions {run['executions_total']}, completed {run['completed']}"
            )
    return "\n".join(lines)
