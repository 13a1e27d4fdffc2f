"""Many sessions on Dask: one Dask task per session spec, on a local cluster or a scheduler you give
(and so SLURM and other clusters through dask-jobqueue). A session that fails is reported with its error
and the others go on; a rerun after an interruption (even ``kill -9`` of the client) finishes only what
is missing, because each session's NWB file appears only when complete (atomic writes) and each task's
results are memoized (:mod:`facemap_nwb.session`).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["BatchRow", "run_batch", "format_summary"]


@dataclass
class BatchRow:
    """What happened to one session: ``done``, ``reused`` (already complete) or ``failed``."""

    spec: str
    status: str
    seconds: float = 0.0
    nwb_path: str = ""
    error: str = ""
    details: str = ""  # the traceback of an unexpected error


class SessionFailed(RuntimeError):
    """A session's error as raised on a worker, with the time it ran before failing and, for unexpected
    errors (not bad input), the traceback (an exception, so that Dask's retries still apply)."""

    def __init__(self, message: str, seconds: float, details: str = ""):
        super().__init__(message)
        self.seconds = seconds
        self.details = details

    def __reduce__(self):
        return type(self), (str(self), self.seconds, self.details)


def _run_one(
    spec_path: str, overwrite: bool, force: bool, backend: str, videos: str | None = None, session_start=None
) -> dict:
    """Runs on a Dask worker: one session, end to end."""
    from .session import load_session_spec, run_session

    start = time.perf_counter()
    try:
        spec = load_session_spec(spec_path, videos=videos, session_start=session_start)
        result = run_session(spec, force=force, overwrite=overwrite, backend=backend)
    except Exception as err:
        # Bad input (a spec, a video, a Facemap output) has a message that says it all; anything else is a
        # bug or an environment problem, and its traceback is kept for the report.
        details = "" if isinstance(err, (ValueError, OSError)) else traceback.format_exc()
        raise SessionFailed(f"{type(err).__name__}: {err}", time.perf_counter() - start, details) from None
    status = "reused" if result.reused else "done"
    return {"status": status, "seconds": time.perf_counter() - start, "nwb_path": str(result.nwb_path)}


def _import_dask():
    try:
        import dask.distributed
    except ImportError as err:
        raise ImportError(
            f"Batch runs need Dask ({err}): install the batch extra, pip install 'facemap-nwb[batch]'."
        ) from None
    return dask.distributed


def _client(scheduler: str | None, workers: int):
    distributed = _import_dask()
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    if scheduler:
        return Client(scheduler), None
    # Worker logs are silenced: every session's error is reported in the summary instead.
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    return Client(cluster), cluster


def run_batch(
    specs: Sequence[str | os.PathLike],
    *,
    scheduler: str | None = None,
    workers: int = 2,
    retries: int = 1,
    overwrite: bool = False,
    force: bool = False,
    backend: str = "hdf5",
    progress: bool = False,
    videos: str | None = None,
    session_start=None,
) -> list[BatchRow]:
    """Run every session spec as one Dask task; returns one row per spec, in the order given.

    Specs are checked before anything is submitted; a bad spec is a failed row and the rest still run.
    ``progress`` shows a bar (on stderr) of the sessions finished. ``videos`` (symlink, hardlink, copy or
    move) overrides every spec's ``videos``; ``session_start`` (a datetime with a time zone) every spec's
    ``session.session_start_time`` (for sessions whose specs and videos give none).
    """
    from .session import load_session_spec, session_state

    _import_dask()  # a missing extra is one message for the whole batch, before any session is looked at
    rows: dict[str, BatchRow] = {}
    runnable = []
    for path in specs:
        path = str(Path(path).resolve())
        start = time.perf_counter()
        try:
            spec = replace(load_session_spec(path, videos=videos, session_start=session_start), backend=backend)
            state = "missing" if overwrite or force else session_state(spec)
        except (ValueError, OSError) as err:  # each session fails alone: the others still run
            rows[path] = BatchRow(path, "failed", error=str(err))
            continue
        except Exception as err:  # noqa: BLE001 - a bug while checking one spec must not stop the batch
            rows[path] = BatchRow(path, "failed", error=f"{type(err).__name__}: {err}", details=traceback.format_exc())
            continue
        if state == "current":  # complete from an earlier run: nothing to submit
            rows[path] = BatchRow(path, "reused", time.perf_counter() - start, str(spec.nwb_path))
        elif state == "stale":
            rows[path] = BatchRow(
                path,
                "failed",
                error=f"'{spec.nwb_path}' exists but was not written from today's spec and inputs (they changed "
                "since, or the file was written some other way); rerun with --overwrite to replace it.",
            )
        else:
            runnable.append(path)
    if runnable:
        as_completed = _import_dask().as_completed
        client, cluster = _client(scheduler, workers)
        try:
            futures = {
                client.submit(
                    _run_one,
                    path,
                    overwrite,
                    force,
                    backend,
                    videos,
                    session_start,
                    key=f"facemap-nwb-{i}-{Path(path).stem}",
                    retries=retries,
                    pure=False,
                ): path
                for i, path in enumerate(runnable)
            }
            from tqdm.auto import tqdm

            bar = tqdm(total=len(futures), desc="sessions", unit="session", disable=not progress)
            for future in as_completed(futures):
                bar.update()
                path = futures[future]
                try:
                    out = future.result()
                    rows[path] = BatchRow(path, out["status"], out["seconds"], out["nwb_path"])
                except SessionFailed as err:  # a failed session is reported, the others go on
                    rows[path] = BatchRow(path, "failed", err.seconds, error=str(err), details=err.details)
                except Exception as err:  # noqa: BLE001 - e.g. a worker lost more often than the retries allow
                    rows[path] = BatchRow(path, "failed", error=f"{type(err).__name__}: {err}")
            bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return [rows[str(Path(p).resolve())] for p in specs]


def format_summary(rows: list[BatchRow]) -> str:
    """The summary table: one line per session, then the counts."""
    lines = [f"{'status':8s} {'seconds':>8s}  session"]
    for row in rows:
        detail = row.nwb_path if row.status != "failed" else row.error.splitlines()[0] if row.error else ""
        lines.append(f"{row.status:8s} {row.seconds:8.1f}  {row.spec}\n{'':18s}{detail}")
    counts = {s: sum(r.status == s for r in rows) for s in ("done", "reused", "failed")}
    lines.append(f"{counts['done']} done, {counts['reused']} reused, {counts['failed']} failed, {len(rows)} in all")
    return "\n".join(lines)
