"""One scan of the deal finder, and the polling loop around it.

    counts = scan(["feed.xml", "offers.jsonl"], predictor, State(path), Rule("30%"),
                  emit=print_deals, webhook=Webhook(url), on_problem=print)

A scan reads every source (a problem with one source never stops the others), drops the entries
without a price and the duplicates (one problem each), prices the offers the memory has not seen
(`predict_details` of any predictor, in its batches, each batch recorded in one transaction),
then hands every deal not reported yet to `emit` (the CLI writes them), marks them reported, and
notifies them. The order of these steps is what makes a killed run lose nothing and report
nothing twice (state.py).
"""

from __future__ import annotations

import threading
from collections import Counter

from pricer.data.items import Item
from pricer.deals.feeds import read_feed
from pricer.deals.offers import Offer, Problem, is_offer_file, read_offer_file
from pricer.deals.state import Rule, State
from pricer.errors import PricerError


def read_sources(sources: list[str], timeout: float, report) -> list[Offer]:
    """Every offer of every source, in order; each problem goes to `report`."""
    offers = []
    for source in sources:
        try:
            found, problems = (read_offer_file(source) if is_offer_file(source)
                               else read_feed(source, timeout))
        except PricerError as e:  # an offer file that cannot be read at all
            found, problems = [], [Problem("unreachable", str(e))]
        for problem in problems:
            report(problem)
        offers += found
    return offers


def usable(offers: list[Offer], report) -> list[Offer]:
    """The offers with a price, each entry once (by `Offer.key`); the others are reported."""
    kept, keys = [], set()
    for offer in offers:
        if offer.price is None:
            report(Problem("no_price", f"{offer.label}: no price (no price field, no $ amount)"))
        elif offer.key in keys:
            report(Problem("duplicate", f"{offer.label}: duplicate of an earlier entry, skipped"))
        else:
            keys.add(offer.key)
            kept.append(offer)
    return kept


def _details(predictor, items: list[Item], report, offers: list[Offer]) -> list[dict | None]:
    """predict_details of a batch; when the batch raises, item by item (None where one fails:
    that offer stays unseen and is tried again at the next scan)."""
    try:
        return predictor.predict_details(items)
    except PricerError:
        raise
    except Exception:
        pass
    found = []
    for item, offer in zip(items, offers):
        try:
            found.append(predictor.predict_details([item])[0])
        except PricerError:
            raise
        except Exception as e:
            report(Problem("predictor", f"{offer.label}: the predictor failed "
                                        f"({type(e).__name__}: {e}); tried again next scan"))
            found.append(None)
    return found


def price_new(offers: list[Offer], predictor, state: State, report, progress=None,
              stop=None) -> int:
    """Price the offers the memory has not seen and record them, batch by batch. Returns how
    many were priced."""
    fresh = state.unseen([o.key for o in offers])
    todo = [o for o in offers if o.key in fresh]
    size, done = max(1, predictor.batch_size), 0
    for start in range(0, len(todo), size):
        if stop is not None and stop():
            break
        batch = todo[start:start + size]
        details = _details(predictor, [Item(o.key, o.text) for o in batch], report, batch)
        rows = [{"key": o.key, "title": o.title, "description": o.description, "url": o.url,
                 "source": o.source, "price": o.price, "estimate": d.get("price"),
                 "p10": d.get("p10"), "p50": d.get("p50"), "p90": d.get("p90"),
                 "predictor": predictor.name}
                for o, d in zip(batch, details) if d is not None]
        state.record(rows)
        done += len(rows)
        if progress:
            progress(done, len(todo))
    return done


def scan(sources: list[str], predictor, state: State, rule: Rule, *, timeout: float = 10.0,
         emit=None, webhook=None, on_problem=None, progress=None, stop=None) -> Counter:
    """One scan (see the module doc). `emit(deals)` writes the new deals (best first) and must
    return only once they are out; `stop()` True ends the pricing early (the rest waits for the
    next scan). Returns the counts: entries, priced, seen_before, deals, notified,
    notify_failed, notify_attempts_failed, and one per problem kind."""
    counts: Counter = Counter()

    def report(problem: Problem) -> None:
        counts[problem.kind] += 1
        if on_problem:
            on_problem(problem)

    offers = read_sources(sources, timeout, report)
    counts["entries"] = len(offers)
    kept = usable(offers, report)
    counts["priced"] = price_new(kept, predictor, state, report, progress, stop)
    counts["seen_before"] = len(kept) - len(state.unseen([o.key for o in kept])) - counts["priced"]
    deals = state.pending(rule)
    if emit:
        emit(deals)
    state.mark_reported([d["key"] for d in deals], notify=webhook is not None)
    counts["deals"] = len(deals)
    if webhook is not None:
        for deal in state.to_notify():
            sent = webhook.send(deal)
            counts["notify_attempts_failed"] += sent.attempts - sent.ok
            if sent.ok:
                state.mark_notified(deal["key"])
                counts["notified"] += 1
            else:
                counts["notify_failed"] += 1
                report(Problem("notify", f"notify {deal['title'][:60]!r}: {sent.error} after "
                                         f"{sent.attempts} attempts; tried again next scan"))
    return counts


def poll(scan_once, seconds: float, stop: threading.Event, on_wait=None) -> int:
    """Call `scan_once()` now and every `seconds` until `stop` is set (a signal handler sets
    it; the wait ends at once, a scan in progress finishes its step). Returns the scans made."""
    scans = 0
    while not stop.is_set():
        scan_once()
        scans += 1
        if on_wait:
            on_wait(seconds)
        if stop.wait(seconds):
            break
    return scans
