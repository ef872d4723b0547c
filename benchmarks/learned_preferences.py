"""Learned therapist preferences at national scale: the read path and the model a round with
`preference_aware_ordering` on builds, against the analytics benchmark's database.

Reuses `platform_bench_analytics` as `benchmarks/analytics.py` seeds it (35,000 therapists,
160,000 patients, 200,000 bundles sent over a year, ~900,000 members, of which ~30 % carry an
informative answer). Times, once each after a warm-up read (a shared machine: noisy figures):
- `SqlPreferenceAnswers.answers()`: the grouped query, the profile reads, the features;
- building the model from them (`model_from_answers`);
- the learned filter's decision for 100,000 (therapist, search) pairs drawn from the data;
- the analytics use case's page of 50 therapists with their learned estimates.

    .venv/bin/python benchmarks/analytics.py            # once, to seed (if not seeded yet)
    .venv/bin/python benchmarks/learned_preferences.py

Prints the figures and writes benchmarks/results/learned_preferences.json.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "layers/shared", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

from sqlalchemy import create_engine  # noqa: E402

from localcloud import postgres  # noqa: E402
from therapy_platform.matching.adapters.analytics import SqlAnalytics  # noqa: E402
from therapy_platform.matching.adapters.preference_answers import SqlPreferenceAnswers  # noqa: E402
from therapy_platform.matching.domain.analytics import PreferenceQuery, period  # noqa: E402
from therapy_platform.matching.domain.models import SearchCandidate  # noqa: E402
from therapy_platform.matching.domain.preferences import model_from_answers  # noqa: E402
from therapy_platform.matching.use_cases import analytics as cases  # noqa: E402
from therapy_platform.matching.use_cases.preferences import deployed_model  # noqa: E402

DATABASE = "platform_bench_analytics"
RESULTS = ROOT / "benchmarks" / "results" / "learned_preferences.json"
PAIRS = 100_000


def _timed(work: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = work()
    return value, round(time.perf_counter() - started, 3)


def main() -> None:
    engine = create_engine(postgres.admin_url(DATABASE))
    source = SqlPreferenceAnswers(lambda: engine)
    load_before = os.getloadavg()[0]
    source.answers()  # warm the database's cache, as a deployed database would be
    answers, read_s = _timed(source.answers)
    model, build_s = _timed(lambda: model_from_answers(answers, deployed_model()))
    rng = random.Random(17)
    now = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    therapists = [a.therapist for a in rng.sample(answers, min(len(answers), 2000))]
    searches = [
        SearchCandidate(
            id=a.therapist.id,
            patient_id=a.therapist.id,
            created_at=now.replace(day=1, month=11),
            location=a.therapist.location,
            birth_date=date(1980 + rng.randrange(30), 1, 1),
            symptoms=frozenset(f.split(":", 1)[1] for f in a.features if f.startswith("symptom:")),
        )
        for a in rng.sample(answers, min(len(answers), 2000))
    ]
    keeps = model.preference(now)
    pairs = [(rng.choice(therapists), rng.choice(searches)) for _ in range(PAIRS)]
    kept, decide_s = _timed(lambda: sum(keeps(t, s) for t, s in pairs))
    query = PreferenceQuery(period(date(2025, 12, 1), date(2026, 11, 30)), limit=50, learned=True)
    page, page_s = _timed(lambda: cases.therapist_preferences(SqlAnalytics(lambda: engine), query).value)
    engine.dispose()
    figures = {
        "answer_groups": len(answers),
        "informative_answers": sum(a.answered for a in answers),
        "therapists_with_answers": len({a.therapist.id for a in answers}),
        "read_s": read_s,
        "build_model_s": build_s,
        "decisions": PAIRS,
        "decide_s": decide_s,
        "decision_us": round(decide_s / PAIRS * 1e6, 2),
        "kept_share": round(kept / PAIRS, 3),
        "analytics_page_of_50_s": page_s,
        "analytics_page_learned_rows": sum(len(g.learned) for g in page.items),
    }
    for name, value in figures.items():
        print(f"{name:32s} {value}")
    result = {
        "benchmark": "learned_preferences",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "data": DATABASE,
        "figures": figures,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
