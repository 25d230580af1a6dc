"""Push a deal to a webhook: one JSON POST, with a timeout and retries (httpx).

    hook = Webhook("https://ntfy.sh", fields={"topic": "my-deals"})
    sent = hook.send(deal)      # Sent(ok, attempts, error); never raises

The body is readable by the usual push services at once: `text` (Slack incoming webhooks),
`message` and `title` (ntfy's JSON publishing, Pushover), `url` (Pushover), `click` (ntfy), plus
the deal's figures; `fields` adds what a service needs besides (ntfy: topic; Pushover: token,
user). Timeouts, connection errors, 429 and 5xx answers are retried (`retries` times, waiting
`backoff`, 2 x `backoff`, ...); other 4xx answers are not (the request itself is wrong).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Sent:
    ok: bool
    attempts: int
    error: str | None = None


def message(deal: dict) -> tuple[str, str]:
    """(title, message) of a deal, in words."""
    off = f"{deal['discount']:.0%} off" if deal.get("discount") is not None else "a deal"
    title = f"{off}: ${deal['price']:,.2f} (estimated ${deal['estimate']:,.2f})"
    spread = (f", likely ${deal['p10']:,.0f}-${deal['p90']:,.0f}"
              if deal.get("p10") is not None and deal.get("p90") is not None else "")
    body = f"{deal['title']}\n${deal['price']:,.2f}, estimated ${deal['estimate']:,.2f}{spread}"
    return title, body + (f"\n{deal['url']}" if deal.get("url") else "")


def payload(deal: dict, fields: dict | None = None) -> dict:
    title, text = message(deal)
    body = {"title": title, "message": text, "text": f"{title}\n{text}",
            "price": deal["price"], "estimate": deal["estimate"], "discount": deal.get("discount"),
            "saving": deal.get("saving"), "key": deal["key"]}
    if deal.get("url"):
        body |= {"url": deal["url"], "click": deal["url"]}
    return body | (fields or {})


class Webhook:
    def __init__(self, url: str, timeout: float = 10.0, retries: int = 3, backoff: float = 1.0,
                 fields: dict | None = None):
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self.fields = dict(fields or {})

    def send(self, deal: dict) -> Sent:
        """POST the deal; retried on timeouts, connection errors, 429 and 5xx."""
        import httpx

        error = None
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                time.sleep(self.backoff * 2 ** (attempt - 2))
            try:
                r = httpx.post(self.url, json=payload(deal, self.fields), timeout=self.timeout)
            except httpx.TimeoutException:
                error = f"timed out after {self.timeout:g} s"
                continue
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
                continue
            if r.status_code < 300:
                return Sent(True, attempt)
            error = f"HTTP {r.status_code}"
            if r.status_code != 429 and r.status_code < 500:
                return Sent(False, attempt, error)
        return Sent(False, self.retries + 1, error)
