"""Time of a batch rerun that reuses every session, next to the first run that computed them.

    python benchmarks/rerun_reuse.py [--sessions 3] [--workers 2] [--keep DIR]

Builds the small batch of tests/test_batch.py (``tests/sessions.py``: trigger tasks on synthetic face
videos), runs it with :func:`facemap_nwb.batch.run_batch` on a local Dask cluster, then runs it again, and
prints the first run's time, the rerun's time and their ratio. The rerun should submit nothing (every
session is complete), so it should take a small fraction of the first run; the test only checks that it
reuses every session and leaves the files alone, because wall times on a busy machine are noisy.
Needs the 'test' extra (Dask); not part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="build the batch in this (new or empty) folder and keep it")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))  # the batch builder of the tests
    from facemap_nwb.batch import run_batch
    from tests.sessions import make_sessions

    write = sys.stdout.write
    with tempfile.TemporaryDirectory(prefix="rerun-reuse-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        specs = make_sessions(folder, args.sessions)
        first, first_s = timed(lambda: run_batch(specs, workers=args.workers))
        again, again_s = timed(lambda: run_batch(specs, workers=args.workers))
    statuses = [r.status for r in first], [r.status for r in again]
    write(f"{args.sessions} session(s), {args.workers} worker(s)\n")
    write(f"first run: {first_s:8.2f} s  {statuses[0]}\n")
    write(f"rerun:     {again_s:8.2f} s  {statuses[1]}\n")
    write(f"ratio:     {again_s / first_s:8.4f}  (rerun / first run)\n")
    if statuses != (["done"] * args.sessions, ["reused"] * args.sessions):
        sys.exit("the first run did not compute every session, or the rerun did not reuse every one")


if __name__ == "__main__":
    main()
