"""Offers from RSS 2.0 and Atom feeds, by URL or file: fetched with httpx (a timeout), parsed
by feedparser, HTML in titles and descriptions turned into text by BeautifulSoup.

    offers, problems = read_feed("https://www.dealnews.com/c142/Electronics/?rss=1", timeout=10)

The offer price is an entry's `price` field (or any `<ns:price>`, e.g. Google Merchant's
`g:price`), else the first dollar amount of its title, else of its description (offers.py).
A feed that cannot be fetched (timeout, refused, HTTP error) or parsed is one `Problem`; a feed
that breaks part-way keeps the entries read before the break (feedparser's "bozo" feeds), with
one problem line saying so.
"""

from __future__ import annotations

import re
from pathlib import Path

from pricer.deals.offers import Offer, Problem, make_offer


def html_to_text(html: str | None) -> str:
    """The text of an HTML fragment (tags dropped, scripts and styles with their content,
    entities decoded, blocks separated), with
    runs of white space as one space."""
    if not html:
        return ""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style", "template"]):  # code, not text
        hidden.decompose()
    text = soup.get_text(" ")
    return re.sub(r"\s+", " ", text).strip()


def fetch(source: str, timeout: float) -> tuple[bytes | None, Problem | None]:
    """The bytes of a feed (an http(s) URL or a file), or the problem that stopped it."""
    if not re.match(r"https?://", source):
        try:
            return Path(source).read_bytes(), None
        except OSError as e:
            return None, Problem("unreachable", f"{source}: cannot read ({e.strerror or e})")
    import httpx

    try:
        response = httpx.get(source, timeout=timeout, follow_redirects=True,
                             headers={"User-Agent": "pricer-deals"})
    except httpx.TimeoutException:
        return None, Problem("timeout", f"{source}: timed out after {timeout:g} s")
    except httpx.HTTPError as e:
        return None, Problem("unreachable", f"{source}: cannot fetch ({type(e).__name__}: {e})")
    if response.status_code >= 400:
        return None, Problem("unreachable", f"{source}: HTTP {response.status_code}")
    return response.content, None


def _price_field(entry) -> str | None:
    """An entry's own price element: `price`, or a namespaced one (`g_price`, `deal_price`)."""
    for key, value in entry.items():
        if (key == "price" or key.endswith("_price")) and isinstance(value, str):
            return value
    return None


def _description(entry) -> str:
    if entry.get("summary"):
        return entry["summary"]
    content = entry.get("content") or []
    return content[0].get("value", "") if content else ""


def parse_feed(data: bytes, source: str) -> tuple[list[Offer], list[Problem]]:
    """The entries of an RSS/Atom document as offers, and at most one problem about the feed."""
    import feedparser

    parsed = feedparser.parse(data)
    entries = parsed.entries
    problems = []
    if parsed.bozo and not entries:
        reason = str(parsed.get("bozo_exception", "")).strip() or "unreadable"
        return [], [Problem("malformed", f"{source}: not a valid RSS/Atom feed ({reason})")]
    if not parsed.version and not entries:
        return [], [Problem("malformed", f"{source}: not an RSS or Atom feed")]
    if parsed.bozo:
        reason = str(parsed.get("bozo_exception", "")).strip()
        problems.append(Problem("malformed", f"{source}: malformed feed ({reason}); the "
                                             f"{len(entries)} entries read up to the fault are scanned"))
    offers = [make_offer(html_to_text(e.get("title")), html_to_text(_description(e)),
                         _price_field(e), e.get("link"), source, f"entry {n}", e.get("id"))
              for n, e in enumerate(entries, 1)]
    return offers, problems


def read_feed(source: str, timeout: float = 10.0) -> tuple[list[Offer], list[Problem]]:
    """Fetch and parse one feed: (its offers, its problems)."""
    data, problem = fetch(source, timeout)
    if problem:
        return [], [problem]
    return parse_feed(data, source)
