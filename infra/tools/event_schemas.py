"""Writes (or with --check, verifies) the JSON Schemas of the domain events in events/schemas/.

Run: python -m tools.event_schemas [--check]   (with infra/ and layers/shared/ on the path)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from therapy_platform.contracts.catalog import EVENT_PAYLOADS
from therapy_platform.platform.events import BusMessage, EventEnvelope

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "events" / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def expected_schemas() -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {
        "envelope.schema.json": {"$schema": DIALECT, **EventEnvelope.model_json_schema(by_alias=True)},
        "bus-message.schema.json": {"$schema": DIALECT, **BusMessage.model_json_schema(by_alias=True)},
    }
    for event_type, payload_model in EVENT_PAYLOADS.items():
        envelope = EventEnvelope.model_json_schema(by_alias=True)
        payload = payload_model.model_json_schema(by_alias=True, mode="serialization")
        definitions = {**envelope.pop("$defs", {}), **payload.pop("$defs", {})}
        envelope["title"] = event_type
        envelope["properties"]["eventType"] = {"const": event_type, "title": "Eventtype", "type": "string"}
        envelope["properties"]["payload"] = payload
        if definitions:
            envelope["$defs"] = definitions
        schemas[f"{event_type}.schema.json"] = {"$schema": DIALECT, **envelope}
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed schemas differ")
    args = parser.parse_args(argv)
    drift = []
    for name, schema in expected_schemas().items():
        path = SCHEMA_DIR / name
        text = render(schema)
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(name)
        else:
            SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if drift:
        print(
            f"event schemas out of date: {', '.join(drift)}; run python -m tools.event_schemas",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
