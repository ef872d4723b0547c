"""Staff-written Markdown (the body of an ad-hoc email) as safe HTML for an email, and as plain text.

Two lines of defence, so no input can put active content into an email:
1. markdown-it-py (CommonMark) with raw HTML switched off: `<script>`, `<img onerror=...>` and
   any other tag a writer types is escaped and shown as text; images are off (remote images
   track readers); a link or autolink is only made for `http(s):`, `mailto:` and `tel:` targets
   (`javascript:`, `data:`, `vbscript:`, relative and protocol-relative URLs stay text).
2. The result is parsed again and re-written from an allow-list (`ALLOWED_TAGS`): only those
   tags, no attribute from the input except a link's `href` that passes the same URL check and
   a list's numeric `start`; every text node is escaped anew. The inline styles email clients
   need are added here, never taken from the input.

Plain text is the Markdown itself (it is written to be read as text), with line endings
normalised, control characters dropped, trailing blanks trimmed and long lines wrapped at 76
columns (list items and quotes keep their indentation; code stays as written).
"""

from __future__ import annotations

import re
import textwrap
from html import escape
from html.parser import HTMLParser
from typing import Final

from markdown_it import MarkdownIt

MAX_MARKDOWN_CHARS: Final = 20_000
TEXT_WIDTH: Final = 76
_LINE_PREFIX: Final = re.compile(r"^(\s*(?:>\s*)*(?:(?:[-*+]|\d{1,9}[.)])\s+)?)")
SAFE_LINK: Final = re.compile(
    r"^(https?://[^\s<>\"'`]+|mailto:[^\s<>\"'`@:/]+@[^\s<>\"'`]+|tel:\+?[0-9 ()/.-]+)$", re.IGNORECASE
)

# tag -> inline style (None: no style). Headings are mapped to two sizes that fit the layout.
_STYLES: Final[dict[str, str | None]] = {
    "p": "margin:0 0 14px 0;",
    "br": None,
    "strong": None,
    "em": None,
    "code": "font-family:Consolas,Menlo,monospace;font-size:13px;background:#f1f3f5;padding:0 3px;",
    "pre": "margin:0 0 14px 0;padding:10px 12px;background:#f1f3f5;white-space:pre-wrap;",
    "blockquote": "margin:0 0 14px 0;padding:4px 12px;border-left:3px solid #c5ccd6;color:#3d4852;",
    "ul": "margin:0 0 14px 0;padding-left:22px;",
    "ol": "margin:0 0 14px 0;padding-left:22px;",
    "li": "margin:0 0 6px 0;",
    "h2": "margin:24px 0 10px 0;font-size:17px;line-height:1.3;color:#1d3557;",
    "h3": "margin:18px 0 8px 0;font-size:15px;line-height:1.3;color:#1d3557;",
    "hr": "border:0;border-top:1px solid #d5dce5;margin:18px 0;",
    "a": "color:#1d5fa8;",
}
_HEADING_LEVEL: Final = {"h1": "h2", "h2": "h2", "h3": "h3", "h4": "h3", "h5": "h3", "h6": "h3"}
ALLOWED_TAGS: Final = frozenset(_STYLES)
_VOID: Final = frozenset({"br", "hr"})
# C0/C1 controls other than tab and newline have no business in a letter (and NUL cannot be stored).
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def safe_link(url: str) -> bool:
    """Whether a link may point there: web, mail or phone; nothing that runs or is relative."""
    return bool(SAFE_LINK.match(url.strip()))


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable(["image", "html_block", "html_inline"])
    md.validateLink = safe_link  # type: ignore[method-assign]
    return md


_MD: Final = _markdown()


class _Sanitiser(HTMLParser):
    """Re-writes HTML keeping only allowed tags (with our styles) and escaped text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def _tag(self, tag: str) -> str | None:
        tag = _HEADING_LEVEL.get(tag, tag)
        return tag if tag in ALLOWED_TAGS else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        name = self._tag(tag)
        if name is None:
            return
        parts = [name]
        values = dict(attrs)
        if name == "a":
            href = (values.get("href") or "").strip()
            if not safe_link(href):
                return  # a link without a safe target becomes its text
            parts.append(f'href="{escape(href, quote=True)}"')
        if name == "ol":
            start = values.get("start") or ""
            if start.isdigit() and 0 < len(start) <= 6:
                parts.append(f'start="{int(start)}"')
        style = _STYLES[name]
        if style:
            parts.append(f'style="{style}"')
        self.out.append(f"<{' '.join(parts)}>")
        if name not in _VOID:
            self.open.append(name)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        name = self._tag(tag)
        if name is None or name in _VOID or name not in self.open:
            return
        while self.open:  # close whatever is still open inside it: the output is always balanced
            current = self.open.pop()
            self.out.append(f"</{current}>")
            if current == name:
                break

    def handle_data(self, data: str) -> None:
        self.out.append(escape(data, quote=False))

    def parse_html_declaration(self, i: int) -> int:
        # A marked section (`<![CDATA[`, `<![if ...]>`) never belongs in an email, and Python's
        # parser raises AssertionError on a malformed one (`<![<script>`): drop it up to its `>`.
        if self.rawdata.startswith("<![", i):
            end = self.rawdata.find(">", i + 3)
            return -1 if end < 0 else end + 1
        return super().parse_html_declaration(i)

    def result(self) -> str:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return "".join(self.out)


def sanitise_html(html: str) -> str:
    """Only allowed tags and attributes, text escaped (second line of defence)."""
    sanitiser = _Sanitiser()
    sanitiser.feed(html)
    return sanitiser.result()


def clean_markdown(source: str) -> str:
    """Line endings normalised, control characters and trailing blanks removed."""
    text = _CONTROL.sub("", source.replace("\r\n", "\n").replace("\r", "\n"))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def markdown_to_html(source: str) -> str:
    """Safe HTML for the body of an email (see the module doc)."""
    return sanitise_html(_MD.render(clean_markdown(source))).strip()


def _wrap(line: str, width: int) -> str:
    prefix = _LINE_PREFIX.match(line)
    lead = prefix.group(1) if prefix else ""
    quote = lead.rstrip().rstrip("-*+0123456789.)").rstrip()
    continuation = (
        quote + " " * (len(lead) - len(quote)) if quote.lstrip().startswith(">") else " " * len(lead)
    )
    return textwrap.fill(
        line[len(lead) :],
        width=width,
        initial_indent=lead,
        subsequent_indent=continuation,
        break_long_words=False,
        break_on_hyphens=False,
    )


def markdown_to_text(source: str, width: int = TEXT_WIDTH) -> str:
    """The Markdown as the plain-text part of an email (see the module doc)."""
    lines: list[str] = []
    fenced = False
    for line in clean_markdown(source).split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            lines.append(line)
        elif fenced or line.startswith(("    ", "\t")) or len(line) <= width or not line.strip():
            lines.append(line)
        else:
            lines.append(_wrap(line, width))
    return "\n".join(lines)
