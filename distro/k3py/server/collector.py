"""How the server process runs Python's cyclic garbage collector.

Most of the server's heap is long-lived JSON: the objects its caches, informers and watches
keep (several copies of every stored pod). They hold no reference cycles and reference
counting frees them, but every full collection walks all of them. With CPython's default
thresholds ``(700, 10, 10)`` a cluster growing by thousands of pods runs a full collection
every few seconds, and each one costs more as the cluster grows: in ``bench/scheduler.py``
28 of them took 15 s of the server's 213 s of CPU time, the last ones 1.6 s each, during
which the server answers nothing. Collecting the youngest generation every
:data:`YOUNG_THRESHOLD` net allocations instead makes full collections about ten times rarer
(4 in the same run) without keeping any garbage: every cycle is still collected, later. The
objects that exist once the server is ready (modules, the API schemas and manifest, the
default policy) are moved out of the collector's sight for good (``gc.freeze``), as they
live as long as the process.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG_THRESHOLD = 7000
"""Net new container objects between two collections of the youngest generation."""


@contextlib.contextmanager
def server_collection() -> Iterator[None]:
    """Run the body with the server's thresholds; restore the previous ones after it."""
    previous = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, previous[1], previous[2])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def freeze_startup_objects() -> None:
    """Collect once, then exclude every object alive now from later collections."""
    gc.collect()
    gc.freeze()
