"""The HTTP app: POST /v1/price, GET /health, GET /metrics, the web page at /, OpenAPI at /docs,
GET /v1/deals (the latest deals of `pricer deals`, with `deals=STATE`).

    app = create_app(make_predictor("greedy", model="default", adapter="runs/x"))
    uvicorn.run(app)            # or `pricer serve`

Limits: bodies over `max_body_bytes` get 413 (FastAPI's max_body_size, before the body is read
in full), requests with more
than `max_items` items 413, bad JSON or fields 422, a full queue 503 with Retry-After; each is
counted in /metrics and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, model_validator

from pricer.data.items import Item as Listing
from pricer.serve.batcher import Closing, MicroBatcher, QueueFull
from pricer.serve.metrics import Metrics

MAX_TEXT = 20_000  # characters of one description (a curated item has under 1,000)


class Item(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="The item's description "
                      "(title and details); a full pricer prompt is accepted too.")
    id: str | None = Field(default=None, description="Echoed back with the prediction.")


class PriceRequest(BaseModel):
    """One item (`text`) or many (`items`), not both."""

    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    items: list[Item] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def one_or_many(self):
        if (self.text is None) == (self.items is None):
            raise ValueError("give either 'text' (one item) or 'items' (a list), not both")
        return self


class Prediction(BaseModel):
    id: str | None = None
    price: float | None = Field(description="Estimated price in USD; null when none could be read.")
    p10: float | None = Field(default=None, description="10th percentile (predictors with a spread).")
    p50: float | None = None
    p90: float | None = None
    reason: str | None = Field(default=None, description="Why there is no price.")


class PriceResponse(BaseModel):
    predictor: str
    predictions: list[Prediction]


class SimilarRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    k: int = Field(default=5, ge=1, le=50)


class CountRequests:
    """ASGI middleware: count each response by path and status, and the requests in flight
    (shutdown waits for them). A plain ASGI class, not `@app.middleware`, so that the endpoint
    still sees the client's disconnect message."""

    def __init__(self, app, metrics: Metrics, state):
        self.app, self.metrics, self.state = app, metrics, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/metrics":
            return await self.app(scope, receive, send)
        status = []

        async def sending(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        self.state.in_flight += 1
        try:
            await self.app(scope, receive, sending)
        finally:
            self.state.in_flight -= 1
            code = status[0] if status else 499  # 499: the client left before an answer
            if code == 413 and not scope.get("pricer.too_many_items"):
                self.metrics.errors.labels("body_too_large").inc()  # FastAPI's max_body_size
            self.metrics.requests.labels(scope["path"], str(code)).inc()


def create_app(predictor, *, max_batch: int = 32, window_ms: float = 5.0, max_queue: int = 1024,
               max_items: int = 1000, max_body_bytes: int = 1_000_000, examples=None,
               neighbours=None, deals=None) -> FastAPI:
    """The app around `predictor` (any `pricer.predict.base.Predictor`). `examples`: items
    offered on the web page; `neighbours`: a `pricer.predict.neighbours.Neighbours` index;
    `deals`: the state file of `pricer deals`, whose latest deals the page shows."""
    metrics = Metrics()
    batcher = MicroBatcher(
        predictor, max_batch=max_batch, window_s=window_ms / 1000, max_queue=max_queue,
        on_batch=lambda size, seconds: (metrics.batch_size.observe(size),
                                        metrics.batch_seconds.observe(seconds)),
        on_error=lambda prompt, exc: metrics.errors.labels("predictor").inc())
    name = predictor.name

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.close()  # uvicorn has stopped taking connections; finish what is queued
        while app.state.in_flight:  # and let the handlers send their answers
            await asyncio.sleep(0.01)

    app = FastAPI(title="pricer", version="1", lifespan=lifespan, max_body_size=max_body_bytes,
                  description="Estimate a product's price from its description.")
    app.state.batcher, app.state.metrics, app.state.predictor = batcher, metrics, predictor
    app.state.in_flight = 0  # requests between arrival and their answer sent
    app.add_middleware(CountRequests, metrics=metrics, state=app.state)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError):
        metrics.errors.labels("bad_input").inc()
        problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
                    for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.post("/v1/price", response_model=PriceResponse, response_model_exclude_none=True,
              responses={413: {"description": "body or item count over the limit"},
                         422: {"description": "malformed JSON or fields"},
                         503: {"description": "queue full (see Retry-After) or shutting down"}})
    async def price(body: PriceRequest, request: Request):
        """Price one item (`{"text": ...}`) or many (`{"items": [{"text": ..., "id": ...}]}`)."""
        items = [Item(text=body.text)] if body.items is None else body.items
        if len(items) > max_items:
            metrics.errors.labels("too_many_items").inc()
            request.scope["pricer.too_many_items"] = True
            return JSONResponse({"detail": f"{len(items)} items in one request; at most "
                                           f"{max_items}"}, status_code=413)
        started = time.perf_counter()
        work = asyncio.ensure_future(batcher.submit([Listing(str(i.id or n), i.text) for n, i in enumerate(items)]))
        metrics.queue.set(batcher.pending())
        try:
            while not work.done():  # the client may hang up while its items wait
                await asyncio.wait({work}, timeout=0.05)
                if not work.done() and await request.is_disconnected():
                    work.cancel()
                    metrics.errors.labels("disconnected").inc()
                    return Response(status_code=499)
            results = work.result()
        except QueueFull:
            metrics.errors.labels("queue_full").inc()
            return JSONResponse({"detail": "too many items waiting; retry shortly"},
                                status_code=503, headers={"Retry-After": "1"})
        except Closing:
            return JSONResponse({"detail": "shutting down"}, status_code=503,
                                headers={"Retry-After": "5"})
        metrics.latency.observe(time.perf_counter() - started)
        metrics.items.inc(len(items))
        predictions = [Prediction(id=item.id, **{k: r.get(k) for k in ("price", "p10", "p50", "p90")},
                                  reason=r.get("reason") or r.get("error"))
                       for item, r in zip(items, results)]
        return PriceResponse(predictor=name, predictions=predictions)

    @app.post("/v1/similar")
    async def similar(body: SimilarRequest):
        """The training items most like this description, with their prices."""
        if neighbours is None:
            return {"items": []}
        found = await asyncio.to_thread(neighbours.search, [body.text], body.k)
        return {"items": found[0]}

    @app.get("/v1/examples")
    async def example_items():
        """Items of the test set the web page offers as examples."""
        return {"items": [{"id": e.id, "text": e.text, "price": e.price}
                          for e in (examples or [])]}

    @app.get("/v1/deals")
    async def latest_deals(limit: int = 50):
        """The latest deals reported by `pricer deals` (`pricer serve --deals STATE`), newest
        first; `enabled` false without a state file."""
        if deals is None:
            return {"enabled": False, "deals": []}
        from pricer.deals.state import latest_deals as read_deals

        found = await asyncio.to_thread(read_deals, deals, max(1, min(limit, 500)))
        return {"enabled": True, "deals": [{k: v for k, v in d.items() if k != "description"}
                                           for d in found]}

    @app.get("/health")
    async def health():
        return {"status": "closing" if batcher.closing else "ok", "predictor": name,
                "queue": batcher.pending(), "similar_items": len(neighbours) if neighbours else 0}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        metrics.queue.set(batcher.pending())
        return Response(metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return (resources.files("pricer.serve") / "static" / "index.html").read_text()

    return app
