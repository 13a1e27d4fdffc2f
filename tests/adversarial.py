"""One way to check a refusal, for every adversarial test module.

A refused input must give exit code 1, one clear message on stderr that names the culprit (the file,
the key or the value), no traceback, and leave nothing behind: no output, no temporary file.

``refuse(argv, folder, names=...)`` runs the command line in this process (fast) and asserts all of
that; ``refuse_in_subprocess`` does the same in a fresh interpreter (for crashes, hangs and resource
limits).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from facemap_nwb.cli import main

__all__ = ["refuse", "refuse_in_subprocess", "files_under", "Refusal"]

# Files the refusal must not leave: outputs and the temporary names atomic writes use.
_LEFTOVER_MARKERS = (".partial", ".nwb", ".zarr", ".png", "results-")


def files_under(folder: Path) -> set[Path]:
    """Every file and folder below ``folder`` (to compare before and after a command)."""
    return {p for p in Path(folder).rglob("*")}


class Refusal:
    """What a refused command printed."""

    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def __repr__(self):
        return f"Refusal(code={self.code}, stderr={self.stderr!r})"


def _check(result: Refusal, names, before: set[Path], folder: Path, code: int) -> Refusal:
    err = result.stderr
    assert result.code == code, f"exit code {result.code}, expected {code}; stderr: {err!r}"
    assert "Traceback" not in err and "Traceback" not in result.stdout, f"a traceback was printed: {err}"
    assert err.strip(), "nothing was printed on stderr"
    assert err.strip().count("\n") == 0, f"expected one message line, got: {err!r}"
    for name in [names] if isinstance(names, str) else names:
        assert str(name) in err, f"the message does not name {name!r}: {err!r}"
    new = sorted(str(p.relative_to(folder)) for p in files_under(folder) - before)
    left = [p for p in new if any(marker in p for marker in _LEFTOVER_MARKERS)]
    assert not left, f"the refused command left {left} behind"
    return result


def refuse(argv: list[str], folder: Path, names=(), *, capsys, code: int = 1) -> Refusal:
    """Run ``facemap-nwb argv`` in this process and check it is refused cleanly (see the module doc)."""
    folder = Path(folder)
    before = files_under(folder)
    capsys.readouterr()
    exit_code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return _check(Refusal(exit_code, captured.out, captured.err), names, before, folder, code)


def refuse_in_subprocess(
    argv: list[str], folder: Path, names=(), *, timeout: float = 60, code: int = 1, env: dict | None = None
) -> Refusal:
    """Run ``facemap-nwb argv`` in a fresh interpreter and check it is refused cleanly."""
    folder = Path(folder)
    before = files_under(folder)
    environment = {**os.environ, **(env or {})}
    run = subprocess.run(
        [sys.executable, "-m", "facemap_nwb", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )
    return _check(Refusal(run.returncode, run.stdout, run.stderr), names, before, folder, code)
