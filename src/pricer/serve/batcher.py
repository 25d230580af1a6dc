"""Micro-batching: concurrent requests wait a little so that their items go to the predictor in
one call (one forward pass for an LLM), then each request gets its own answers.

How long the first waiting request waits (the window): at least `window_s` (5 ms), and at least
WINDOW_SHARE (5 %) of the last batch's time, at most MAX_WINDOW_S; it ends as soon as `max_batch`
items wait. A fixed 5 ms is right where a batch takes milliseconds (a GPU). Where it takes
seconds (an LLM on a CPU), the clients answered by one batch cannot all send their next request
within 5 ms, so batches alternated full and nearly empty (measured: docs/serve.md); waiting 5 %
of a batch's time costs at most 5 % latency and lets the batch fill. While requests keep
arriving (each within QUIET_S of the last), the window stretches, up to STRETCH_SHARE (25 %) of
the last batch's time: 32 clients answered together come back one after another over 50-100 ms
on a 2-core CPU, and the ones after a fixed window waited a whole further batch (the p99).

Hand-written (about 100 lines) because what it needs is small and specific: a bounded queue
that refuses rather than waits, a per-item retry when a batch raises, and draining on shutdown.
The predictor runs in one worker thread, one batch at a time, so it need not be thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field


def details(predictor, items: list) -> list[dict]:
    """`predict_details` of the predictor contract (the base class wraps `predict`)."""
    return predictor.predict_details(items)


WINDOW_SHARE = 0.05  # the window is at least this share of the last batch's seconds
STRETCH_SHARE = 0.25  # while requests keep arriving, it stretches up to this share
QUIET_S = 0.02  # "keep arriving": the next within this many seconds of the last
MAX_WINDOW_S = 1.0


class QueueFull(Exception):
    """More items are waiting than the queue holds: the caller should retry later."""


class Closing(Exception):
    """The server is shutting down and takes no new work."""


@dataclass
class Job:
    items: list
    future: asyncio.Future
    results: list = field(default_factory=list)


class MicroBatcher:
    """`await batcher.submit(items)` -> one dict per item, from `predict_details`.

    max_batch: items per predictor call (a larger request is run alone, in one call);
    window_s: how long the first waiting request waits at least for others to join its batch
    (longer after slow batches: see the module's docstring; 0: never waits);
    max_queue: items allowed to wait; beyond it `submit` raises QueueFull at once.
    `on_batch(size, seconds)` and `on_error(item, exc)` report to the metrics."""

    def __init__(self, predictor, max_batch: int = 32, window_s: float = 0.005,
                 max_queue: int = 1024, on_batch=None, on_error=None):
        self.predictor, self.max_batch, self.window_s, self.max_queue = (
            predictor, max_batch, window_s, max_queue)
        self.on_batch = on_batch or (lambda size, seconds: None)
        self.on_error = on_error or (lambda item, exc: None)
        self.jobs: deque[Job] = deque()
        self.waiting = 0  # items in self.jobs
        self.running = 0  # items in the batch being predicted
        self.closing = False
        self.last_batch_s = 0.0  # how long the last predictor call took
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    def pending(self) -> int:
        return self.waiting + self.running

    def window(self, share: float = WINDOW_SHARE) -> float:
        """Seconds the first waiting request waits for others (ends early at max_batch items);
        with `share=STRETCH_SHARE`, the most it waits while requests keep arriving."""
        if self.window_s <= 0:
            return 0.0
        return min(max(self.window_s, share * self.last_batch_s), max(MAX_WINDOW_S, self.window_s))

    async def submit(self, items: list) -> list[dict]:
        if self.closing:
            raise Closing()
        if self.waiting + len(items) > self.max_queue and self.waiting:
            raise QueueFull()  # one request larger than the queue still runs when it is alone
        if self._worker is None:
            self.start()
        job = Job(list(items), asyncio.get_running_loop().create_future())
        self.jobs.append(job)
        self.waiting += len(items)
        self._wake.set()
        return await job.future

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._worker = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Take no new work, finish everything queued and running, stop the worker."""
        self.closing = True
        while self.jobs or self.running:
            await asyncio.sleep(0.01)
        if self._worker is not None:
            self._worker.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            start = loop.time()
            deadline, latest = start + self.window(), start + self.window(STRETCH_SHARE)
            while self.waiting < self.max_batch:  # let concurrent requests join this batch
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), deadline - loop.time())
                except TimeoutError:
                    break
                deadline = min(latest, max(deadline, loop.time() + QUIET_S))  # still arriving
            batch = [self.jobs.popleft()]
            size = len(batch[0].items)
            while self.jobs and size + len(self.jobs[0].items) <= self.max_batch:
                batch.append(self.jobs.popleft())
                size += len(batch[-1].items)
            self.waiting -= size
            if self.jobs:
                self._wake.set()
            else:
                self._wake.clear()
            batch = [job for job in batch if not job.future.done()]  # client gone: skip its items
            items = [p for job in batch for p in job.items]
            if not items:
                continue
            self.running = len(items)
            started = loop.time()
            results = await asyncio.to_thread(self._predict, items)
            self.last_batch_s = loop.time() - started
            self.on_batch(len(items), self.last_batch_s)
            self.running = 0
            start = 0
            for job in batch:
                answer = results[start:start + len(job.items)]
                start += len(job.items)
                if not job.future.done():
                    job.future.set_result(answer)

    def _predict(self, items: list) -> list[dict]:
        """The batch in one call; if it raises, each item alone, so one bad item fails alone."""
        try:
            return details(self.predictor, items)
        except Exception:
            if len(items) == 1:
                return [self._failed(items[0])]
        return [self._one(p) for p in items]

    def _one(self, item) -> dict:
        try:
            return details(self.predictor, [item])[0]
        except Exception:
            return self._failed(item)

    def _failed(self, item) -> dict:
        import sys

        exc = sys.exc_info()[1]
        self.on_error(item, exc)
        return {"price": None, "error": f"the predictor failed on this item ({type(exc).__name__})"}
