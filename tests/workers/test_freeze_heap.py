"""A long-running process freezes its heap once set up (``simulations.process.freeze_heap``):
checked in a real child process with the engine's modules loaded, so the pytest process's
own heap stays as it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import gc, json, weakref
import simulations.engine  # numpy and numba: the bulk of a worker's heap
from simulations.process import freeze_heap

class Node:
    pass

frozen = freeze_heap()
tracked = len(gc.get_objects())  # what a full collection walks from now on
node = Node()
node.itself = node  # a cycle made afterwards: reference counting alone never frees it
ref = weakref.ref(node)
del node
gc.collect()
print(json.dumps({"frozen": frozen, "tracked": tracked, "cycle_freed": ref() is None}))
"""


def test_the_objects_alive_at_the_freeze_leave_the_collections_and_later_cycles_are_still_freed():
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["frozen"] > 50_000, seen
    assert seen["tracked"] < seen["frozen"] / 10, seen
    assert seen["cycle_freed"], seen
