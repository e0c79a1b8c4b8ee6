"""Named crash points for the fault-injection tests (tests/test_faults.py).

`checkpoint("extract:before_commit")` does nothing unless the environment variable TOTES_KILL_AT
names that point, in which case the process kills itself with SIGKILL: no exception handler, no
`finally`, no atexit runs, exactly like a machine or container dying there. The points mark the
moments where a crash is most dangerous (data written, state not yet committed).
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "extract:mid",  # some tables' JSON written, no manifest, no bookmark
    "extract:before_commit",  # all JSON and the manifest written, bookmark not committed
    "transform:mid",  # latest states written, facts and dimensions not yet
    "transform:before_commit",  # everything written and published, bookmark not committed
    "load:before_apply",  # staging tables written, warehouse transaction not started
    "load:after_apply",  # warehouse transaction committed, bookmark not committed
)


def checkpoint(point: str) -> None:
    assert point in POINTS, f"unknown crash point {point!r}"
    if os.environ.get("TOTES_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
