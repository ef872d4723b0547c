"""Renders the German emails: one Jinja2 template per kind of email (`templates/email/<kind>.j2`),
each printed twice from the same source, as HTML (autoescaped: any text from records is
escaped, links only for http(s)/mailto/tel) and as plain text (reflowed to 76 columns).
Pure: no I/O besides reading the templates, which ship with the layer."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup

from therapy_platform.communication.domain.email_content import (
    KIND_LABELS,
    EmailContent,
    LegalNotice,
    german_date,
    german_datetime,
)
from therapy_platform.communication.domain.emails import EmailKind
from therapy_platform.communication.rendering.markdown_html import markdown_to_html, markdown_to_text

TEMPLATE_DIR: Final = Path(__file__).resolve().parent.parent / "templates" / "email"
TEXT_WIDTH: Final = 76
MAX_SUBJECT: Final = 300  # what the emails table and OutgoingEmail hold
SAFE_URL: Final = re.compile(r"^(https?://[^\s<>\"']+|mailto:[^\s<>\"'@]+@[^\s<>\"']+|tel:\+?[0-9 ()/-]+)$")
# A line break that survives reflowing (text) and becomes <br> (HTML).
_LINE_BREAK: Final = "\u2028"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def safe_url(url: object) -> str | None:
    """The URL if it is one a link may point to (web, mail, phone), else None: a record holding
    `javascript:...` must never become a clickable link."""
    value = str(url).strip()
    return value if SAFE_URL.match(value) else None


def _reflow(value: object, width: int = TEXT_WIDTH) -> str:
    lines: list[str] = []
    for segment in str(value).split(_LINE_BREAK):
        words = " ".join(segment.split())
        lines.extend(
            textwrap.wrap(words, width=width, break_long_words=False, break_on_hyphens=False) or [""]
        )
    return "\n".join(lines)


def _fact(value: object, label: str) -> str:
    return textwrap.fill(
        " ".join(str(value).split()),
        width=TEXT_WIDTH,
        initial_indent=f"  {label}: ",
        subsequent_indent="    ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _bullet(value: object) -> str:
    return textwrap.fill(
        " ".join(str(value).split()),
        width=TEXT_WIDTH,
        initial_indent="  • ",
        subsequent_indent="    ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _kind_label(kind: object) -> str:
    return KIND_LABELS[EmailKind(str(kind))]


def _tidy_text(text: str) -> str:
    # Template whitespace leaves trailing blanks and runs of empty lines; the "-- " line is the
    # signature separator mail clients recognise, trailing blank included.
    lines = [line if line == "-- " else line.rstrip() for line in text.replace(_LINE_BREAK, "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def _tidy_html(html: str) -> str:
    return re.sub(r"\n\s*\n+", "\n", html).strip() + "\n"


def _one_line(subject: str) -> str:
    line = " ".join(subject.split())
    return line if len(line) <= MAX_SUBJECT else line[: MAX_SUBJECT - 1].rstrip() + "\u2026"


def _markdown_html(source: object) -> Markup:
    # markdown_to_html escapes every text and keeps only allow-listed tags (markdown_html.py).
    return Markup(markdown_to_html(str(source)))  # noqa: S704


def _markdown_text(source: object) -> str:
    return markdown_to_text(str(source))


def _environment(*, html: bool) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        # The text environment renders text/plain only, never a page: nothing to escape there.
        autoescape=html,  # noqa: S701
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.globals.update(html=html, br=Markup("<br>\n") if html else _LINE_BREAK)
    environment.filters.update(
        reflow=_reflow,
        fact=_fact,
        bullet=_bullet,
        safe_url=safe_url,
        date_de=german_date,
        datetime_de=german_datetime,
        kind_label=_kind_label,
        markdown=_markdown_html if html else _markdown_text,
    )
    return environment


class EmailRenderer:
    """Renders any `EmailContent` with the organisation's legal notice in the footer."""

    def __init__(self, legal: LegalNotice) -> None:
        self._legal = legal

    @cached_property
    def _html(self) -> Environment:
        return _environment(html=True)

    @cached_property
    def _text(self) -> Environment:
        return _environment(html=False)

    def _variables(self, content: EmailContent) -> dict[str, Any]:
        return {"email": content, "legal": self._legal}

    def render(self, content: EmailContent) -> RenderedEmail:
        name = f"{content.kind.value}.j2"
        variables = self._variables(content)
        text_template: Template = self._text.get_template(name)
        subject = "".join(text_template.blocks["subject"](text_template.new_context(variables)))
        return RenderedEmail(
            subject=_one_line(subject),
            html=_tidy_html(self._html.get_template(name).render(variables)),
            text=_tidy_text(text_template.render(variables)),
        )
