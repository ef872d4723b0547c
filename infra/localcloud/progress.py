"""Short progress lines for long tool runs (sam build, sam deploy) whose own output goes to a log
file under .state/logs/: the terminal shows `building...`, `done in N s (log: PATH)`, and on
failure the log's last lines and where the rest is."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

FAILURE_TAIL_LINES = 40


def tail(log: Path, lines: int = FAILURE_TAIL_LINES) -> list[str]:
    if not log.exists():
        return []
    return log.read_text(errors="replace").splitlines()[-lines:]


def logged_step(
    label: str,
    run: Callable[[], None],
    *,
    log: Path,
    say: Callable[[str], None],
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Run one step whose output `run` writes to `log`; a failing tool's exit is re-raised after
    the operator has seen the log's end."""
    say(f"  {label}...")
    began = clock()
    try:
        run()
    except subprocess.CalledProcessError:
        say(f"  {label} FAILED after {clock() - began:.0f} s; the last {FAILURE_TAIL_LINES} lines of {log}:")
        for line in tail(log):
            say(f"    {line}")
        say(f"  full log: {log}")
        raise
    say(f"  {label} done in {clock() - began:.0f} s (log: {log})")
