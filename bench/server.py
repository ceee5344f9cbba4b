"""`tideflow server` API latency and the web UI's first render.

    .venv/bin/python bench/server.py                       # SQLite
    .venv/bin/python bench/server.py --pg-url postgresql://USER@HOST:PORT/DB   # PostgreSQL too
    .venv/bin/python bench/server.py --ui                  # + first render of 5,000 events

API: 50 concurrent clients (threads, one keep-alive connection each) against a server on
127.0.0.1 with no workers (the API's own cost: start creates the run, signal stores it, describe
reads it); each client sends --requests of each kind. Median and p99 per operation. Bounded: at
most --requests x 50 calls per kind and --max-seconds in all.

UI: a run of --events events (a loop of one no-op activity) is executed first, then headless
chromium (selenium, system chromedriver) opens its page; the time from navigation until the
history table holds every event and the graph is drawn.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server_util import running_server  # noqa: E402

WORKFLOW = {"request_id": "b", "amount": 1, "requester": "bench", "timeout": "1h"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def api_latency(
    db: str, clients: int, requests: int, max_seconds: float
) -> dict[str, dict[str, float]]:
    with running_server(db, workers=0) as server:
        deadline = time.monotonic() + max_seconds
        timings: dict[str, list[float]] = {"start": [], "signal": [], "describe": []}
        lock = threading.Lock()

        def client(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                ids = []
                for op in ("start", "signal", "describe"):
                    for i in range(requests):
                        if time.monotonic() > deadline:
                            return
                        t0 = time.perf_counter()
                        if op == "start":
                            r = http.post(
                                "/runs",
                                json={
                                    "workflow": "approval",
                                    "input": WORKFLOW,
                                    "run_id": f"b{n}-{i}",
                                },
                            )
                            ids.append(r.json()["run_id"])
                        elif op == "signal":
                            r = http.post(
                                f"/runs/{ids[i % len(ids)]}/signal",
                                json={"name": "approve", "payload": {"approved": True, "by": "b"}},
                            )
                        else:
                            r = http.get(f"/runs/{ids[i % len(ids)]}")
                        elapsed = time.perf_counter() - t0
                        assert r.status_code < 300, r.text
                        with lock:
                            timings[op].append(elapsed)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return {
        op: {"n": len(v), "median_ms": statistics.median(v) * 1000, "p99_ms": pct(v, 0.99) * 1000}
        for op, v in timings.items()
        if v
    }


def ui_first_render(events: int) -> dict[str, float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "ui.db")
        total = max(1, events // 6)  # 6 events an iteration
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "interpreter",
                "run",
                str(ROOT / "bench/workflows/server_events.yaml"),
                "--input",
                f'{{"total": {total}}}',
                "--activities",
                str(ROOT / "bench/activities.py"),
                "--db",
                db,
                "--id",
                "ui",
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        del proc
        with running_server(db, workers=0) as server:
            count = len(server.get("/runs/ui/history").json()["events"])
            options = Options()
            options.binary_location = shutil.which("chromium") or "chromium"
            for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
                options.add_argument(flag)
            driver = webdriver.Chrome(
                service=Service(shutil.which("chromedriver") or "chromedriver"), options=options
            )
            try:
                renders = []
                for _ in range(3):
                    driver.get("about:blank")
                    t0 = time.perf_counter()
                    driver.get(server.url + "/#/run/ui")
                    WebDriverWait(driver, 120, poll_frequency=0.02).until(
                        lambda d: d.execute_script(
                            "return document.body.dataset.historyEnded === '1' && "
                            "document.querySelectorAll('#history tr').length >= arguments[0] && "
                            "document.querySelector('#graph svg') !== null",
                            count,
                        )
                    )
                    renders.append(time.perf_counter() - t0)
            finally:
                driver.quit()
    return {"events": count, "median_s": statistics.median(renders), "max_s": max(renders)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--ui", action="store_true")
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("sqlite", str(Path(tmp) / "bench.db"))]
        if args.pg_url:
            stores.append(("postgres", args.pg_url))
        for name, db in stores:
            for op, fig in api_latency(db, args.clients, args.requests, args.max_seconds).items():
                print(
                    f"{name:9} {op:9} n={fig['n']:5}  median {fig['median_ms']:7.1f} ms  p99 {fig['p99_ms']:7.1f} ms"
                )
    if args.ui:
        fig = ui_first_render(args.events)
        print(
            f"ui first render, {fig['events']:,} events: median {fig['median_s']:.2f} s, max {fig['max_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
