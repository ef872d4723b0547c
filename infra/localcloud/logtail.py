"""`localcloud logs F --follow`: poll CloudWatch Logs from a start time and hand on each new line
once, until the operator presses Ctrl-C (the caller catches KeyboardInterrupt)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

# (start time in ms) -> CloudWatch Logs events ({"eventId", "timestamp", "message"}) from then on
FetchEvents = Callable[[int], list[dict[str, Any]]]


def follow(fetch: FetchEvents, start_ms: int, *, sleep: Callable[[], None]) -> Iterator[str]:
    """Yield each event's line once, in the order CloudWatch gives them, forever. Events sharing
    the newest timestamp are asked for again on the next poll (a later event may carry the same
    millisecond), so the ids seen at that millisecond are remembered to skip them."""
    since = start_ms
    seen_at_since: set[str] = set()
    while True:
        for event in sorted(fetch(since), key=lambda event: int(event["timestamp"])):
            event_id, timestamp = str(event["eventId"]), int(event["timestamp"])
            if timestamp < since or (timestamp == since and event_id in seen_at_since):
                continue
            if timestamp > since:
                since, seen_at_since = timestamp, set()
            seen_at_since.add(event_id)
            yield str(event["message"]).rstrip()
        sleep()


def json_records(lines: list[str]) -> list[dict[str, Any]]:
    """The JSON log records among `lines`, whether each sits on one line (Powertools' compact
    form) or is spread over several (POWERTOOLS_DEV=true indents them); other text is skipped."""
    text, decoder, records, position = "\n".join(lines), json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        try:
            record, position = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
