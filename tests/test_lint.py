"""The code style the project promises (ruff E, F, T201; line length 120; complexity <= 17)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


def test_ruff_check():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it comes with the 'test' extra)")
    result = subprocess.run([ruff, "check", "--output-format", "concise", str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
