"""The garbage collector's pace: while a worker runs, and while a short command starts.

A step allocates a few hundred containers (the engine's dicts, events, futures), nearly all
freed again by reference counting when the step is committed. With CPython's default
threshold (a young-generation collection every 700 net allocations) the collector still ran
about every 20 steps and each pass cost about 0.5 ms: 15% of a W2 worker's CPU
(docs/benchmarks.md). A higher threshold lets those objects die before a pass looks at them;
what cycles there are wait a little longer (a few MB at most).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Young-generation allocations between collections while a worker runs (CPython's is 700).
WORKER_THRESHOLD = 10_000


@contextlib.contextmanager
def worker_pace() -> Iterator[None]:
    """Raise the young generation's threshold for the block (never lower it), and put back
    the one found unless someone changed it meanwhile (another worker of the process)."""
    found = gc.get_threshold()
    if found[0] == 0 or found[0] >= WORKER_THRESHOLD:  # disabled, or already as patient
        yield
        return
    gc.set_threshold(WORKER_THRESHOLD, *found[1:])
    try:
        yield
    finally:
        if gc.get_threshold()[0] == WORKER_THRESHOLD:
            gc.set_threshold(*found)


@contextlib.contextmanager
def start_up() -> Iterator[None]:
    """No collection in the block, for what a command makes to keep: its modules, classes and
    parser, a loaded file and its model. Young-generation passes over those find next to
    nothing (about 650 objects in the whole of `tideflow validate samples/order.yaml`) and
    walk each new object up to twice: some 17 ms of that command, about 6% of its CPU
    (docs/benchmarks.md). At the end what the block made is filed in the oldest generation
    without a pass (freeze, then unfreeze), so none follows either; what is garbage among it
    is found by the next full collection, as for any old object. When the application has
    frozen objects itself, unfreezing would release its too: the collector is then only
    turned back on, and one young pass follows. A collector that was off stays off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
