"""The deal finder's memory: one SQLite file (WAL mode) of every offer priced, and of which deals
were reported and notified.

    state = State("results/deals.sqlite")
    state.unseen(keys)                       # offers not priced before
    state.record(rows)                       # one transaction per batch of priced offers
    deals = state.pending(rule)              # deals not reported yet, ranked
    state.mark_reported(keys, notify=True)   # after they were written out
    state.to_notify(); state.mark_notified(key)

Why nothing is lost and nothing reported twice when the process is killed at any moment: an
offer is recorded (with its estimate) only in the transaction that commits its batch, so a kill
before leaves it unseen and the next run prices it again; a deal is marked reported only after
it was written out, in one transaction for the whole report, so a kill before the commit leaves
it pending and the next run reports it (the window for a repeat is the few microseconds between
the last byte written and the commit); the same for each notification, one commit per deal after
the webhook accepted it. WAL lets `pricer serve --deals` read while a scan writes.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from pricer.errors import PricerError, writing

SCHEMA = """
CREATE TABLE IF NOT EXISTS offers (
    key TEXT PRIMARY KEY,        -- Offer.key: the entry at this price
    title TEXT NOT NULL,
    description TEXT,
    url TEXT,
    source TEXT,
    price REAL NOT NULL,         -- the offer price
    estimate REAL,               -- the predictor's price; NULL when it gave none
    p10 REAL, p50 REAL, p90 REAL,
    predictor TEXT,
    seen_at TEXT NOT NULL,
    reported_at TEXT,            -- written out as a deal
    notify_pending INTEGER NOT NULL DEFAULT 0,
    notified_at TEXT
);
CREATE INDEX IF NOT EXISTS offers_unreported ON offers (reported_at);
"""
COLUMNS = ("key", "title", "description", "url", "source", "price", "estimate", "p10", "p50",
           "p90", "predictor", "seen_at", "reported_at", "notified_at")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Rule:
    """--min-discount: "30%" (the offer at least 30 % under the estimate) or "50" (at least $50
    under it, the course's threshold)."""

    def __init__(self, text: str):
        raw = str(text).strip()
        self.share = raw.endswith("%")
        try:
            value = float(raw.rstrip("%").strip().lstrip("$"))
        except ValueError:
            raise PricerError(f"--min-discount must be a share like 30% or dollars like 50, "
                              f"got {text!r}") from None
        if not (0 <= value < 100 if self.share else value >= 0):
            raise PricerError(f"--min-discount {text!r}: a share must be 0-99%, dollars 0 or more")
        self.value = value / 100 if self.share else value
        self.text = raw

    def where(self) -> tuple[str, tuple]:
        """SQL condition on (price, estimate) and its parameters; ranked by the same measure."""
        if self.share:
            return "estimate > 0 AND (estimate - price) >= ? * estimate", (self.value,)
        return "estimate IS NOT NULL AND (estimate - price) >= ?", (self.value,)

    def order(self) -> str:
        return "(estimate - price) / estimate DESC" if self.share else "(estimate - price) DESC"


def deal_of(row: sqlite3.Row) -> dict:
    """A stored offer as a deal dict: the columns plus `saving` ($) and `discount` (share)."""
    deal = {k: row[k] for k in COLUMNS}
    estimate, price = deal["estimate"], deal["price"]
    deal["saving"] = round(estimate - price, 2) if estimate is not None else None
    deal["discount"] = round((estimate - price) / estimate, 4) if estimate else None
    return deal


class State:
    """The SQLite memory at `path` (created with its folder when absent)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: autocommit; transactions are explicit (BEGIN IMMEDIATE)
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise PricerError(f"{self.path}: not a deals state file ({e})") from None

    def close(self) -> None:
        self.db.close()

    def _transaction(self, sql: str, rows: list[tuple]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(sql, rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def unseen(self, keys: list[str]) -> set[str]:
        """The keys that are not in the memory yet."""
        found = set()
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            marks = ",".join("?" * len(part))
            found |= {r[0] for r in self.db.execute(f"SELECT key FROM offers WHERE key IN ({marks})", part)}
        return set(keys) - found

    def record(self, rows: list[dict]) -> None:
        """Priced offers (dicts with the columns up to `predictor`), in one transaction."""
        stamp = now()
        self._transaction(
            "INSERT OR IGNORE INTO offers (key, title, description, url, source, price, estimate, "
            "p10, p50, p90, predictor, seen_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(r["key"], r["title"], r["description"], r["url"], r["source"], r["price"],
              r["estimate"], r.get("p10"), r.get("p50"), r.get("p90"), r["predictor"], stamp)
             for r in rows])

    def pending(self, rule: Rule) -> list[dict]:
        """The offers that meet `rule` and were not reported yet, best first."""
        condition, params = rule.where()
        rows = self.db.execute(f"SELECT * FROM offers WHERE reported_at IS NULL AND {condition} "
                               f"ORDER BY {rule.order()}, key", params)
        return [deal_of(r) for r in rows]

    def mark_reported(self, keys: list[str], notify: bool = False) -> None:
        """The deals were written out (one transaction); `notify`: they wait for the webhook."""
        self._transaction("UPDATE offers SET reported_at = ?, notify_pending = ? WHERE key = ?",
                          [(now(), int(notify), k) for k in keys])

    def to_notify(self) -> list[dict]:
        rows = self.db.execute("SELECT * FROM offers WHERE notify_pending = 1 ORDER BY reported_at, key")
        return [deal_of(r) for r in rows]

    def mark_notified(self, key: str) -> None:
        self._transaction("UPDATE offers SET notify_pending = 0, notified_at = ? WHERE key = ?",
                          [(now(), key)])

    def counts(self) -> dict:
        row = self.db.execute("SELECT COUNT(*), COUNT(reported_at), COUNT(notified_at), "
                              "SUM(notify_pending) FROM offers").fetchone()
        return {"offers": row[0], "reported": row[1], "notified": row[2],
                "notify_pending": row[3] or 0}


def latest_deals(path: str | Path, limit: int = 50) -> list[dict]:
    """The last `limit` reported deals of a state file, newest first, read-only (the web page)."""
    path = Path(path)
    if not path.is_file():
        raise PricerError(f"{path}: no such deals state file")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM offers WHERE reported_at IS NOT NULL "
                              "ORDER BY reported_at DESC, (estimate - price) / estimate DESC "
                              "LIMIT ?", (limit,)).fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        raise PricerError(f"{path}: not a deals state file ({e})") from None
    return [deal_of(r) for r in rows]
