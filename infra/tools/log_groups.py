"""Every function gets its own log group with a retention (docs/privacy.md#retention).

For each `AWS::Serverless::Function` of template.yaml this adds, when missing:
- an `AWS::Logs::LogGroup` `<Function>LogGroup` named `/therapy-platform/${Environment}/<Function>`
  with `RetentionInDays: !Ref LogRetentionDays` and `KmsKeyId: !GetAtt LogsKey.Arn`, in the block
  that ends the resources;
- `LoggingConfig: {LogGroup: !Ref <Function>LogGroup}` as the function's first property.

The name is not Lambda's default `/aws/lambda/<name>`: that group already exists for every
function that ever ran (Lambda creates it), so declaring it would fail the stack update; and
naming it after the function would make the function and its group depend on each other.
LocalStack ignores `LoggingConfig.LogGroup` (it keeps writing `/aws/lambda/<name>`, which the
local tooling reads); AWS writes to the declared group.

Idempotent: run it after adding a function (or merging a branch that did).

    python -m tools.log_groups            rewrite template.yaml
    python -m tools.log_groups --check    exit 1 naming the functions that lack one
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
BLOCK_HEADER = (
    "  # ================================================================ log groups (tools/log_groups.py)\n"
)
_FUNCTION = re.compile(
    r"^  ([A-Za-z0-9]+):\n    Type: AWS::Serverless::Function\n    Properties:\n", re.MULTILINE
)


def functions(text: str) -> list[str]:
    """The template's functions, in the order they are declared."""
    return [match.group(1) for match in _FUNCTION.finditer(text)]


def log_group_name(function: str) -> str:
    return f"{function}LogGroup"


def _log_group(function: str) -> str:
    return (
        f"  {log_group_name(function)}:\n"
        "    Type: AWS::Logs::LogGroup\n"
        "    Properties:\n"
        f"      LogGroupName: !Sub /therapy-platform/${{Environment}}/{function}\n"
        "      RetentionInDays: !Ref LogRetentionDays\n"
        "      KmsKeyId: !GetAtt LogsKey.Arn   # docs/privacy.md#encryption\n"
    )


def _has_logging_config(text: str, function: str) -> bool:
    start = text.index(f"\n  {function}:\n") + 1
    following = re.search(r"^  [A-Za-z0-9]+:\n", text[start + 1 :], re.MULTILINE)
    body = text[start : start + 1 + following.start()] if following else text[start:]
    return "\n      LoggingConfig:" in body


def missing(text: str) -> list[str]:
    """Functions without their log group resource or without the LoggingConfig pointing to it."""
    return [
        function
        for function in functions(text)
        if f"\n  {log_group_name(function)}:\n" not in text
        or f"LogGroup: !Ref {log_group_name(function)}" not in text
        or not _has_logging_config(text, function)
    ]


def wire(text: str) -> str:
    for function in functions(text):
        if not _has_logging_config(text, function):
            head = f"\n  {function}:\n    Type: AWS::Serverless::Function\n    Properties:\n"
            text = text.replace(
                head, head + f"      LoggingConfig: {{LogGroup: !Ref {log_group_name(function)}}}\n", 1
            )
        if f"\n  {log_group_name(function)}:\n" not in text:
            # The block ends the resources: a new group goes last, before Outputs.
            assert "\nOutputs:\n" in text, "template.yaml has no Outputs section to put the block before"
            if BLOCK_HEADER not in text:
                text = text.replace("\nOutputs:\n", "\n" + BLOCK_HEADER + "\nOutputs:\n", 1)
            text = text.replace("\nOutputs:\n", "\n" + _log_group(function) + "\nOutputs:\n", 1)
    return text


def main(argv: list[str]) -> int:
    text = TEMPLATE.read_text()
    if "--check" in argv:
        lacking = missing(text)
        if lacking:
            print("functions without their log group: " + ", ".join(lacking), file=sys.stderr)
            return 1
        return 0
    wired = wire(text)
    if wired != text:
        TEMPLATE.write_text(wired)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
