"""The machine's speed at the moment of a benchmark run, recorded with every figure of issue 15:
the pure planning benchmark (benchmarks/matching_round.py, 25 % of the national data, no
database, one core) timed once in a process of its own. Two runs of any benchmark compare only
as far as their calibrations agree (other work on the 2 cores slows both alike)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def pure_planning() -> dict[str, Any]:
    """{"pure_plan_national_0_25_s": seconds, ...}: lower is a faster (or quieter) machine."""
    command = [
        sys.executable, str(ROOT / "benchmarks" / "matching_round.py"),
        "--case", "national:0.25", "--repeats", "1", "--no-trace",
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "pure_plan_national_0_25_s": figures["wall_s_best"],
        "benchmark": "matching_round.py --case national:0.25",
        "load_average_1_5_15": [round(value, 2) for value in os.getloadavg()],
    }
