"""Run a command under resource limits and measure it: CPU seconds and address space capped by the kernel,
peak resident memory and CPU time of that one process, so that an input that expands without bound shows
as a kill or as a figure over the bound.

The command runs as the grandchild of the test process, under a small launcher: Linux starts a process's
peak-memory figure at the resident size of the process it was forked from, so a child forked straight from
a large pytest process would report pytest's size. The launcher is small, and it reports its child's own
figures (``os.wait4``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

__all__ = ["run_limited"]

_LAUNCHER = """
import json, os, resource, subprocess, sys
cpu, memory, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
child = subprocess.Popen([sys.executable, "-m", "facemap_nwb", *sys.argv[4:]])
_, status, usage = os.wait4(child.pid, 0)
with open(report, "w") as handle:
    json.dump({"code": os.waitstatus_to_exitcode(status), "cpu_s": usage.ru_utime + usage.ru_stime,
               "peak_mb": usage.ru_maxrss / 1024}, handle)
"""


def run_limited(argv: list[str], *, cpu_seconds: int = 5, memory_mb: int = 4096, timeout: float = 60) -> dict:
    """Run ``python -m facemap_nwb argv`` with at most ``cpu_seconds`` of CPU and ``memory_mb`` of address space.

    Returns ``{"code", "stdout", "stderr", "cpu_s", "peak_mb", "wall_s"}``; a command killed by a limit has a
    negative code (the signal).
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "report.json")
        start = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(cpu_seconds), str(memory_mb * 2**20), report, *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        wall = time.perf_counter() - start
        with open(report) as handle:
            figures = json.load(handle)
    return {**figures, "stdout": run.stdout, "stderr": run.stderr, "wall_s": wall}
