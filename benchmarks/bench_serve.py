"""Load test and faults of `pricer serve`, on loopback only, bounded in count and time.

The server runs in a child process (this file with --serve: the app of pricer.serve.app around
a predictor made by make_predictor, wrapped so that an item containing RAISE-ON-THIS-ITEM makes it
raise). The client is asyncio + httpx: C concurrent clients send R single-item requests (test
items, cycled), first to a micro-batching server, then to a one-at-a-time server (--max-batch 1)
with the same model, then the faults. Prints one JSON object with everything.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_serve.py --predictor greedy --model default \
        --adapter runs/demo/adapter --clients 32 --requests 2000 --single-requests 300
"""

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "amazon-pricer" / "test.jsonl"
RAISE = "RAISE-ON-THIS-ITEM"


# ----------------------------------------------------------------------------------- server
class Flaky:
    """The served predictor, raising on any batch that holds the RAISE marker (a fault)."""

    def __init__(self, inner):
        self.inner, self.name = inner, getattr(inner, "name", "predictor")

    def predict_details(self, items):
        from pricer.predict.base import texts_of
        from pricer.serve.batcher import details

        if any(RAISE in text for text in texts_of(items)):
            raise RuntimeError("fault injected by bench_serve")
        return details(self.inner, items)


def serve(args) -> None:
    import uvicorn

    from pricer.cli.predictor import build_predictor, for_run
    from pricer.predict.registry import option_types
    from pricer.serve.app import create_app

    # as `pricer serve` makes it (the one way every command builds a predictor), on the CPU:
    # the predictor's own batch size per forward pass (greedy: 16) unless --predict-batch says
    # otherwise; a server batch of 32 items is then two passes
    name = args.predictor if args.predictor or not args.run else for_run(args.run, None)[0]
    flags = {"model": args.model, "adapter": args.adapter, "path": args.path, "value": args.value,
             "precision": args.precision, "batch_size": args.predict_batch,
             "device": "cpu" if "device" in option_types(name or "greedy") else None}
    predictor, _ = build_predictor(args.predictor, flags, args.opt, train=args.train, run=args.run)
    app = create_app(Flaky(predictor), max_batch=args.max_batch, window_ms=args.window_ms,
                     max_queue=args.max_queue, max_items=1000, max_body_bytes=1_000_000)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def start_server(args, max_batch: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, __file__, "--serve", "--port", str(port), "--max-batch", str(max_batch),
               "--window-ms", str(args.window_ms), "--max-queue", str(args.max_queue)]
    command += ["--predict-batch", str(args.predict_batch)] if args.predict_batch else []
    for flag in ("predictor", "run", "model", "adapter", "path", "value", "precision", "train"):
        command += [f"--{flag}", str(getattr(args, flag))] if getattr(args, flag) is not None else []
    command += [part for pair in args.opt or [] for part in ("--opt", pair)]
    process = subprocess.Popen(command, env=os.environ | {"PYTHONPATH": str(ROOT / "src")})
    url = f"http://127.0.0.1:{port}"
    import httpx

    end = time.monotonic() + 300
    while time.monotonic() < end:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not start")


# ----------------------------------------------------------------------------------- client
async def load(url: str, texts: list[str], clients: int, requests: int, deadline_s: float) -> dict:
    """`clients` workers share `requests` single-item requests; stops at `deadline_s`."""
    import httpx

    latencies, statuses, next_index = [], {}, 0
    stop_at = time.monotonic() + deadline_s

    async def worker(client):
        nonlocal next_index
        while next_index < requests and time.monotonic() < stop_at:
            i = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                r = await client.post(url + "/v1/price", json={"text": texts[i % len(texts)]})
                code = r.status_code if r.json()["predictions"][0].get("price") is not None \
                    or r.status_code != 200 else "200-no-price"
            except (httpx.HTTPError, ValueError) as e:
                code = type(e).__name__
            latencies.append(time.perf_counter() - started)
            statuses[code] = statuses.get(code, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        before = batch_sizes((await client.get(url + "/metrics")).text)
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        seconds = time.perf_counter() - started
        after = batch_sizes((await client.get(url + "/metrics")).text)
    done = len(latencies)
    q = statistics.quantiles(latencies, n=100) if done > 1 else [0.0] * 99
    errors = sum(n for code, n in statuses.items() if code not in (200, "200-no-price"))
    return {"clients": clients, "requests": done, "seconds": round(seconds, 1),
            "items_per_s": round(done / seconds, 2), "p50_ms": round(q[49] * 1000, 1),
            "p99_ms": round(q[98] * 1000, 1), "errors": errors, "statuses": {str(k): v for k, v in statuses.items()},
            "batches": {key: after[key] - before[key] for key in after}}


def batch_sizes(metrics: str) -> dict:
    """The server's batches so far (its /metrics): how many, their items, how many of <= 16."""
    values = {}
    for line in metrics.splitlines():
        for key, prefix in (("count", "pricer_batch_size_count "), ("items", "pricer_batch_size_sum "),
                            ("at_most_16_items", 'pricer_batch_size_bucket{le="16.0"} ')):
            if line.startswith(prefix):
                values[key] = int(float(line[len(prefix):]))
    return {key: values.get(key, 0) for key in ("count", "items", "at_most_16_items")}


async def faults(url: str, text: str) -> dict:
    """Each fault once, then: is the server still answering, and what did it count?"""
    import httpx

    out = {}
    async with httpx.AsyncClient(timeout=300) as client:
        # a client that hangs up while its request waits
        try:
            await client.post(url + "/v1/price", json={"items": [{"text": text}] * 64}, timeout=0.05)
        except httpx.TimeoutException:
            out["disconnect"] = "client gave up after 50 ms"
        r = await client.post(url + "/v1/price", json={"items": [{"text": "x"}] * 10_000})
        out["10000_items"] = r.status_code
        r = await client.post(url + "/v1/price", content=b'{"text": "' + b"x" * 10_000_000 + b'"}',
                              headers={"content-type": "application/json"})
        out["10MB_body"] = r.status_code
        r = await client.post(url + "/v1/price", content=b'{"text": ', headers={"content-type": "application/json"})
        out["malformed_json"] = r.status_code
        r = await client.post(url + "/v1/price", json={"items": [{"text": text}, {"text": RAISE},
                                                                 {"text": text}]})
        failed = ["failed" in (p.get("reason") or "") for p in r.json()["predictions"]]
        out["raise_on_one_item"] = {"status": r.status_code, "answered": failed.count(False),
                                    "failed": failed.count(True)}
        await asyncio.sleep(2)  # the disconnected request's items finish or are skipped
        r = await client.post(url + "/v1/price", json={"text": text})
        out["after_faults"] = {"status": r.status_code, "price": r.json()["predictions"][0].get("price")}
        metrics = (await client.get(url + "/metrics")).text
    out["counted"] = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
                      if line.startswith("pricer_errors_total")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--predictor", help="a predictor by name (default: greedy, or what --run holds)")
    parser.add_argument("--run", help="a run folder or model file, as pricer serve --run")
    parser.add_argument("--model")
    parser.add_argument("--adapter")
    parser.add_argument("--path")
    parser.add_argument("--value", type=float)
    parser.add_argument("--precision")
    parser.add_argument("--train")
    parser.add_argument("--opt", action="append", help="key=value, as pricer serve --opt")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--single-requests", type=int, default=300,
                        help="requests sent to the one-at-a-time server")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--predict-batch", type=int, help="items per forward pass (default: the "
                        "predictor's own, as pricer serve; the first run forced --max-batch)")
    parser.add_argument("--max-queue", type=int, default=1024)
    parser.add_argument("--deadline", type=float, default=1800, help="seconds per load phase at most")
    args = parser.parse_args()
    if args.serve:
        return serve(args)

    from pricer.data.items import read_items

    texts = [i.prompt for i in read_items(TEST)][:500]
    report = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "load_before": [round(x, 2) for x in os.getloadavg()]},
              "predictor": args.predictor, "run": args.run, "model": args.model, "adapter": args.adapter,
              "predict_batch": args.predict_batch or "the predictor's default"}
    for label, max_batch, requests in (("micro_batching", args.max_batch, args.requests),
                                       ("one_at_a_time", 1, args.single_requests)):
        process, url = start_server(args, max_batch)
        try:
            asyncio.run(load(url, texts, args.clients, min(args.clients, requests), 600))  # warm-up
            report[label] = asyncio.run(load(url, texts, args.clients, requests, args.deadline))
            report[label]["max_batch"] = max_batch
            if label == "micro_batching":
                report["faults"] = asyncio.run(faults(url, texts[0]))
        finally:
            process.terminate()
            process.wait(timeout=60)
    report["speedup"] = round(report["micro_batching"]["items_per_s"]
                              / report["one_at_a_time"]["items_per_s"], 2)
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
