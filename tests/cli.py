"""Running ``train_agent.py`` from the tests, as a user would: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# one thread, no bars, validation on 100 users: a small run's flags
QUIET = ("--eval-users", "100", "--threads", "1", "--progress", "false")
# one epoch of an 8-dimensional model on the synthetic default: seconds
QUICK_RUN = ("--epochs", "1", "--dim", "8", *QUIET)


def run_cli(*args: str, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    """``python train_agent.py *args`` in the repository, its output captured."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "train_agent.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        **kwargs,
    )
