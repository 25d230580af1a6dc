"""`pricer serve`: any predictor behind an HTTP API (POST /v1/price) and a web page."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from pricer.cli.predictor import chosen_predictor, fit_note, options_of, with_predictor_flags
from pricer.errors import PricerError

err = Console(stderr=True)


@with_predictor_flags(without=("max_items",))  # --max-items was once items per request
def serve(
    precision: Annotated[Optional[str], typer.Option(help="LLM: auto (greedy on a CPU with fast bf16: checked; else bf16 where fast, fp16 on a GPU without bf16), fp32, bf16, fp16, 8bit, 4bit, checked (bf16, close decisions again in fp32: fp32's answers).")] = None,
    device: Annotated[Optional[str], typer.Option(help="LLM: cpu, cuda... (default: cuda if present).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Items per predictor call (1: no micro-batching).")] = 32,
    window_ms: Annotated[float, typer.Option(help="How long a request waits at least for others to batch with (after slow batches longer: 5 % of the last batch's time, at most 1 s; 0: never waits).")] = 5.0,
    max_queue: Annotated[int, typer.Option(help="Items allowed to wait; more get 503.")] = 1024,
    max_request_items: Annotated[int, typer.Option(help="Items allowed in one request; more get 413.")] = 1000,
    max_body_kb: Annotated[int, typer.Option(help="Largest request body in KiB; larger get 413.")] = 1024,
    examples: Annotated[Optional[str], typer.Option(
        help="Items (file or saved data set, test split) offered as examples on the web page.")] = None,
    similar: Annotated[Optional[str], typer.Option(
        help="Priced items (file or data set, train split) to show the most similar of.")] = None,
    similar_max: Annotated[int, typer.Option(help="Index only the first N items of --similar.")] = 5000,
    deals: Annotated[Optional[Path], typer.Option(
        help="The state file of `pricer deals` (--state): the page shows its latest deals.")] = None,
    **chosen,
) -> None:
    """Serve a predictor over HTTP: POST /v1/price, GET /health, GET /metrics, /docs, and a web page at /."""
    for name, number in (("--max-batch", max_batch), ("--max-queue", max_queue),
                         ("--max-request-items", max_request_items), ("--max-body-kb", max_body_kb),
                         ("--similar-max", similar_max)):
        if number < 1:
            raise PricerError(f"{name} must be at least 1")
    if window_ms < 0 or not 0 < port < 65536:
        raise PricerError("--window-ms must be >= 0 and --port between 1 and 65535")
    more = {"precision": precision, "device": device}
    options_of(chosen["opt"], more)  # a bad --opt fails before any loading
    import uvicorn

    from pricer.data.items import read_items
    from pricer.serve.app import create_app

    example_items = read_items(examples, split="test")[:50] if examples else None
    if deals is not None:
        from pricer.deals.state import latest_deals

        latest_deals(deals, 1)  # a missing or foreign file is one line now, not on the page
    index = None
    if similar:
        from pricer.predict.neighbours import Neighbours

        items = read_items(similar, split="train")[:similar_max]
        with err.status(f"indexing {len(items)} items for 'most similar'"):
            index = Neighbours(items)
    with err.status(f"loading {chosen['predictor'] or chosen['run'] or 'greedy'}") as status:
        served, fit = chosen_predictor(chosen, more, status=status.update)
    if note := fit_note(fit):
        err.print(f"[yellow]{note}[/]", highlight=False, soft_wrap=True)
    app = create_app(served, max_batch=max_batch, window_ms=window_ms, max_queue=max_queue,
                     max_items=max_request_items, max_body_bytes=max_body_kb * 1024,
                     examples=example_items, neighbours=index, deals=deals)
    err.print(f"serving {served.name} on http://{host}:{port}/ (API docs: /docs; Ctrl+C stops "
              "after the requests in flight)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
