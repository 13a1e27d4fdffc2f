"""Run a command under resource limits and measure it: CPU seconds and address space capped by the kernel,
peak resident memory and CPU time of that one child (``os.wait4``), so an input that expands without bound
shows as a kill or as a figure over the bound."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["run_limited"]


def run_limited(argv: list[str], *, cpu_seconds: int = 5, memory_mb: int = 4096, timeout: float = 60) -> dict:
    """Run ``python -m facemap_nwb argv`` with at most ``cpu_seconds`` of CPU and ``memory_mb`` of address space.

    Returns ``{"code", "stdout", "stderr", "cpu_s", "peak_mb", "wall_s"}``; a child killed by a limit (or by
    the ``timeout``) has a negative code, the signal.
    """

    def limit():
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "facemap_nwb", *map(str, argv)], stdout=out, stderr=err, preexec_fn=limit, env=env
        )
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return {
            "code": child.returncode,
            "stdout": out.read(),
            "stderr": err.read(),
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024,
            "wall_s": wall,
        }
