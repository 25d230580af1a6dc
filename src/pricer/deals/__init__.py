"""The deal finder: price a stream of offers, report the real bargains, remember, notify.

Public surface, imported lazily:
    Offer, Problem, find_price, parse_price, read_offer_file   offers.py: offers and their price
    read_feed, parse_feed, html_to_text                        feeds.py: RSS 2.0 / Atom (feedparser)
    State, Rule, latest_deals                                  state.py: the SQLite memory (WAL)
    Webhook, payload                                           notify.py: POST a deal, with retries
    scan, poll                                                 scan.py: one scan, and the loop
"""

import importlib

_WHERE = {
    "Offer": "offers", "Problem": "offers", "find_price": "offers", "parse_price": "offers",
    "read_offer_file": "offers", "read_feed": "feeds", "parse_feed": "feeds",
    "html_to_text": "feeds", "State": "state", "Rule": "state", "latest_deals": "state",
    "Webhook": "notify", "payload": "notify", "scan": "scan", "poll": "scan",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
