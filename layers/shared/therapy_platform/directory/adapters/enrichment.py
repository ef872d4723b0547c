"""Practice websites (WebsiteEnricher port): where a directory entry has a website but no email,
the practice's own page, and at most one contact page linked from it on the same host, are read
with beautifulsoup4 for a contact email and phone hours. Same politeness as the directory
(a PoliteSession on the run's budget: robots rules, rate per host, retries, the run's cap), plus
a cap on website fetches per run. Each value found keeps the URL it came from.

A website named in directory data is untrusted: the session's transport is
`public_web.PublicWebTransport` (public addresses only, the connection pinned to the address
checked, a byte cap and a deadline per fetch), redirects are followed here hop by hop (at most
`MAX_REDIRECTS`, each hop checked and its host's robots.txt obeyed), and a refused address
leaves the entry without enrichment."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup

from therapy_platform.contracts.directory_files import Enrichment, Provenanced
from therapy_platform.directory.adapters.polite_http import PoliteSession
from therapy_platform.directory.domain.contact_text import email_candidates, phone_hours, pick_email
from therapy_platform.directory.domain.runs import DirectoryUnavailableError, RobotsDisallowedError
from therapy_platform.directory.domain.web_addresses import UnsafeAddressError

logger = logging.getLogger(__name__)

MAX_PAGE_BYTES: Final = 1_000_000  # also the transport's cap: the rest is never read
MAX_REDIRECTS: Final = 5
_CONTACT_LINK: Final = re.compile(r"kontakt|contact|impressum|telefon|sprechzeit", re.IGNORECASE)


class PageContent:
    def __init__(self, url: str, html: str) -> None:
        soup = BeautifulSoup(html, "html.parser")
        for hidden in soup(["script", "style", "noscript", "template"]):
            hidden.decompose()
        self.url = url
        self.text = soup.get_text("\n", strip=True)
        self.mailtos: list[str] = []
        self.links: list[str] = []
        for anchor in soup.find_all("a", href=True):
            href = str(anchor.get("href", "")).strip()
            if href.lower().startswith("mailto:"):
                self.mailtos.append(href[7:].split("?", 1)[0])
            elif _CONTACT_LINK.search(href) or _CONTACT_LINK.search(anchor.get_text(" ", strip=True)):
                self.links.append(urljoin(url, href))


def website_url(website: str) -> str:
    return website if re.match(r"^https?://", website, re.IGNORECASE) else f"https://{website}"


class WebsiteContactEnricher:
    def __init__(self, session: PoliteSession, *, max_fetches: int) -> None:
        self._session = session
        self.max_fetches = max_fetches
        self.fetches = 0

    def _page(self, url: str) -> PageContent | None:
        if self.fetches >= self.max_fetches:
            return None
        self.fetches += 1
        try:
            response = self._session.get(
                url, accept="text/html,application/xhtml+xml", max_redirects=MAX_REDIRECTS
            )
        except UnsafeAddressError as error:
            logger.warning("practice website refused: %s", error)
            return None
        except (DirectoryUnavailableError, RobotsDisallowedError) as error:
            logger.info("practice website not read: %s", error)
            return None
        content_type = response.headers.get("Content-Type", "text/html")
        if response.status_code != 200 or "html" not in content_type.lower():
            return None
        body = response.content[:MAX_PAGE_BYTES]
        html = body.decode(response.encoding or response.apparent_encoding or "utf-8", errors="replace")
        return PageContent(response.url or url, html)

    def enrich(self, website: str) -> Enrichment | None:
        start = website_url(website)
        home = self._page(start)
        if home is None:
            return None
        pages = [home]
        host = urlsplit(home.url).netloc
        contact = next(
            (link for link in home.links if urlsplit(link).netloc == host and link != home.url), None
        )
        email, windows = self._found(pages, start)
        if (email is None or windows is None) and contact is not None:
            page = self._page(contact)
            if page is not None:
                pages.append(page)
                email, windows = self._found(pages, start)
        if email is None and windows is None:
            return None
        now = datetime.now(UTC)
        return Enrichment(
            email=Provenanced(value=email[0], source=email[1], fetched_at=now) if email else None,
            phone_windows=Provenanced(value=windows[0], source=windows[1], fetched_at=now)
            if windows
            else None,
        )

    @staticmethod
    def _found(
        pages: list[PageContent], website: str
    ) -> tuple[tuple[str, str] | None, tuple[dict[str, list[str]], str] | None]:
        email: tuple[str, str] | None = None
        windows: tuple[dict[str, list[str]], str] | None = None
        for page in pages:
            if email is None:
                address = pick_email(email_candidates(page.text, page.mailtos), website)
                if address is not None:
                    email = (address, page.url)
            if windows is None:
                hours = phone_hours(page.text)
                if hours:
                    windows = (hours, page.url)
        return email, windows
