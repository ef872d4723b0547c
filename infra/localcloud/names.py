"""What an operator may name on the command line: the functions of template.yaml (logical ids)
and the sample events under events/. A wrong name answers with the names that exist."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from localcloud.paths import PROJECT_ROOT

EVENTS_DIR = PROJECT_ROOT / "events"


class UnknownNameError(LookupError):
    """One line for the operator: what was not found and what exists instead."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.known = sorted(known)
        super().__init__(f"no {kind} {name!r}; known: {', '.join(self.known) or '(none)'}")


@cache
def template_functions(template: Path = PROJECT_ROOT / "template.yaml") -> tuple[str, ...]:
    """Logical ids of the template's Lambda functions."""
    from samtranslator.yaml_helper import yaml_parse

    resources = yaml_parse(template.read_text()).get("Resources", {})
    kinds = ("AWS::Serverless::Function", "AWS::Lambda::Function")
    return tuple(sorted(name for name, spec in resources.items() if spec.get("Type") in kinds))


def require_function(name: str, known: Iterable[str]) -> None:
    known = tuple(known)
    if name not in known:
        raise UnknownNameError("function", name, known)


def event_files(events_dir: Path = EVENTS_DIR) -> list[str]:
    """Sample events as `localcloud invoke --event` takes them (paths under events/; the event
    schemas beside them are not events)."""
    return sorted(
        str(path.relative_to(events_dir))
        for path in events_dir.rglob("*.json")
        if not path.name.endswith(".schema.json")
    )


def event_path(name: str, events_dir: Path = EVENTS_DIR) -> Path:
    """A path as given, else a file under events/ (e.g. patients_api/create_patient.json)."""
    for candidate in (Path(name), events_dir / name):
        if candidate.is_file():
            return candidate
    raise UnknownNameError("event file", name, event_files(events_dir))
