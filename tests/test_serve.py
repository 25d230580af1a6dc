"""pricer serve: the API on cheap predictors (constant, a fake one that can be held or made to
fail), micro-batching without mixing answers, limits and faults, shutdown, one tiny LLM."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from clirun import assert_bad_input, pricer
from pricer.predict.base import Predictor
from pricer.serve.app import create_app


class Echo(Predictor):
    """Price = number of characters of the item's prompt, so each answer says which item it
    was for. `gate` (when set) holds every call until released; "boom" in a text raises."""

    name = "echo"

    def __init__(self):
        self.calls: list[int] = []
        self.gate = None

    def predict(self, items):
        if self.gate is not None:
            self.gate.wait(timeout=30)
        self.calls.append(len(items))
        if any("boom" in item.text for item in items):
            raise RuntimeError("boom")
        return [float(len(item.prompt)) for item in items]


def wait_until(condition, seconds=20.0):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def metric(client, line_start):
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def prompt_length(text):
    from pricer.data.prompts import as_test_prompt

    return float(len(as_test_prompt(text)))


def test_one_item_and_many():
    with TestClient(create_app(Echo())) as client:
        one = client.post("/v1/price", json={"text": "A red kettle"})
        assert one.status_code == 200
        assert one.json() == {"predictor": "echo", "predictions": [{"price": prompt_length("A red kettle")}]}
        many = client.post("/v1/price", json={"items": [{"text": "a", "id": "x1"}, {"text": "bb"}]})
        assert many.json()["predictions"] == [{"id": "x1", "price": prompt_length("a")},
                                              {"price": prompt_length("bb")}]
        assert client.get("/health").json()["status"] == "ok"
        assert client.get("/docs").status_code == 200
        assert "/v1/price" in client.get("/openapi.json").json()["paths"]
        assert "Estimate the price" in client.get("/").text
        assert metric(client, "pricer_items_total") == 3
        assert metric(client, 'pricer_requests_total{path="/v1/price",status="200"}') == 2


def test_spread_is_returned_where_the_predictor_gives_one():
    class Spread(Predictor):
        name = "spread"

        def predict_details(self, prompts):
            return [{"price": 10.0, "p10": 5.0, "p50": 9.0, "p90": 20.0, "mass": 0.9} for _ in prompts]

    with TestClient(create_app(Spread())) as client:
        answer = client.post("/v1/price", json={"text": "x"}).json()["predictions"][0]
    assert answer == {"price": 10.0, "p10": 5.0, "p50": 9.0, "p90": 20.0}


def test_concurrent_requests_are_batched_and_never_mixed():
    echo = Echo()
    echo.gate = threading.Event()
    app = create_app(echo, max_batch=64, window_ms=1)
    texts = [f"item number {i} " + "x" * i for i in range(24)]
    with TestClient(app) as client, ThreadPoolExecutor(24) as pool:
        futures = [pool.submit(client.post, "/v1/price", json={"text": t}) for t in texts]
        # the first batch is held in the predictor; the others queue up behind it
        wait_until(lambda: app.state.batcher.pending() == len(texts))
        echo.gate.set()
        answers = [f.result().json()["predictions"][0]["price"] for f in futures]
        assert answers == [prompt_length(t) for t in texts]
        assert sum(echo.calls) == len(texts) and max(echo.calls) > 1 and len(echo.calls) < len(texts)
        assert metric(client, "pricer_batch_size_count") == len(echo.calls)


def test_full_queue_is_503_with_retry_after():
    echo = Echo()
    echo.gate = threading.Event()
    app = create_app(echo, max_queue=2, window_ms=0)
    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/v1/price", json={"text": "first"})
        wait_until(lambda: app.state.batcher.running == 1)  # in the predictor, held
        second = pool.submit(client.post, "/v1/price", json={"items": [{"text": "a"}, {"text": "b"}]})
        wait_until(lambda: app.state.batcher.waiting == 2)  # the queue is full
        refused = client.post("/v1/price", json={"text": "third"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        echo.gate.set()
        assert first.result().status_code == 200 and second.result().status_code == 200
        assert client.post("/v1/price", json={"text": "later"}).status_code == 200
        assert metric(client, 'pricer_errors_total{kind="queue_full"}') == 1


def test_bad_input_and_limits_are_refused_and_counted():
    with TestClient(create_app(Echo(), max_items=100, max_body_bytes=1_000_000)) as client:
        post = client.post
        malformed = post("/v1/price", content=b'{"text": "unclosed', headers={"content-type": "application/json"})
        assert malformed.status_code == 422 and "JSON" in malformed.text
        assert post("/v1/price", json={"text": ""}).status_code == 422
        assert post("/v1/price", json={}).status_code == 422
        both = post("/v1/price", json={"text": "a", "items": [{"text": "b"}]})
        assert both.status_code == 422 and "not both" in both.text
        assert post("/v1/price", json={"items": [{"text": 3}]}).status_code == 422
        many = post("/v1/price", json={"items": [{"text": "a"}] * 10_000})
        assert many.status_code == 413
        assert "at most 100" in many.text
        huge = post("/v1/price", content=b'{"text": "' + b"x" * 10_000_000 + b'"}',
                    headers={"content-type": "application/json"})
        assert huge.status_code == 413
        assert post("/v1/price", json={"text": "still serving"}).status_code == 200
        assert metric(client, 'pricer_errors_total{kind="bad_input"}') == 5
        assert metric(client, 'pricer_errors_total{kind="too_many_items"}') == 1
        assert metric(client, 'pricer_errors_total{kind="body_too_large"}') == 1


def test_a_failing_item_fails_alone():
    echo = Echo()
    app = create_app(echo)
    with TestClient(app) as client:
        answer = client.post("/v1/price", json={"items": [{"text": "fine"}, {"text": "boom"},
                                                          {"text": "also fine"}]})
        assert answer.status_code == 200
        prices = [p.get("price") for p in answer.json()["predictions"]]
        assert prices == [prompt_length("fine"), None, prompt_length("also fine")]
        assert "failed" in answer.json()["predictions"][1]["reason"]
        assert client.post("/v1/price", json={"text": "next"}).status_code == 200
        assert metric(client, 'pricer_errors_total{kind="predictor"}') == 1


def test_shutdown_finishes_requests_in_flight():
    echo = Echo()
    echo.gate = threading.Event()
    app = create_app(echo)
    client = TestClient(app)
    client.__enter__()
    with ThreadPoolExecutor(2) as pool:
        request = pool.submit(client.post, "/v1/price", json={"text": "in flight"})
        wait_until(lambda: app.state.batcher.running == 1)
        closing = pool.submit(client.__exit__, None, None, None)
        wait_until(lambda: app.state.batcher.closing)
        assert not closing.done()  # shutdown waits for the item in the predictor
        echo.gate.set()
        closing.result(timeout=30)
        assert request.result().status_code == 200
        assert request.result().json()["predictions"][0]["price"] == prompt_length("in flight")


def test_serves_a_tiny_llm(tiny_llama):
    from conftest import AMAZON_TEST
    from pricer.data.items import read_items
    from pricer.predict.registry import make_predictor

    llm = make_predictor("expected", model=str(tiny_llama), precision="fp32", device="cpu")
    items = read_items(AMAZON_TEST)[:3]
    with TestClient(create_app(llm)) as client:
        answer = client.post("/v1/price", json={"items": [{"text": i.prompt, "id": i.id} for i in items]})
    predictions = answer.json()["predictions"]
    direct = llm.predict_details([i.prompt for i in items])
    assert [p["id"] for p in predictions] == [i.id for i in items]
    assert [p["price"] for p in predictions] == pytest.approx([d["price"] for d in direct], rel=1e-5)
    assert all(p["p10"] <= p["p50"] <= p["p90"] for p in predictions)


def test_cli_refuses_bad_options():
    assert_bad_input(pricer("serve", "--predictor", "nope"), "nope")
    assert_bad_input(pricer("serve", "--predictor", "constant", "--max-batch", "0"), "--max-batch")
    assert_bad_input(pricer("serve", "--predictor", "bow-lr"), "fitted")


def test_a_client_that_hangs_up_is_dropped_and_counted():
    """Over a real socket (uvicorn in a thread): B's client gives up while B waits behind A;
    B's item never reaches the predictor, A is answered."""
    import socket

    import httpx
    import uvicorn

    echo = Echo()
    echo.gate = threading.Event()
    app = create_app(echo, window_ms=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    url = f"http://127.0.0.1:{port}"
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, url + "/v1/price", json={"text": "A"}, timeout=30)
            wait_until(lambda: app.state.batcher.running == 1)
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(url + "/v1/price", json={"text": "B hangs up"}, timeout=0.5)
            wait_until(lambda: 'kind="disconnected"} 1.0' in httpx.get(url + "/metrics").text)
            echo.gate.set()
            assert first.result().status_code == 200
        assert httpx.post(url + "/v1/price", json={"text": "C"}).status_code == 200
        assert echo.calls == [1, 1]  # A, then C: B was dropped
    finally:
        echo.gate.set()
        server.should_exit = True
        thread.join(timeout=30)


def batches_of_staggered_clients(step_s: float, rounds: int = 3, n: int = 8) -> list[int]:
    """The batch sizes a MicroBatcher (max_batch n, 5 ms window) gives a predictor taking 1 s a
    batch when n clients send `rounds` requests each, client i coming back 10 ms + i * step_s
    after its answer (their round trips, staggered)."""
    import asyncio

    from pricer.serve import batcher as batching

    class Slow(Predictor):
        name = "slow"

        def __init__(self):
            self.calls = []

        def predict(self, prompts):
            self.calls.append(len(prompts))
            time.sleep(1.0)
            return [1.0] * len(prompts)

    slow = Slow()

    async def clients():
        b = batching.MicroBatcher(slow, max_batch=n, window_s=0.005)

        async def client(i):
            for _ in range(rounds):
                await b.submit([f"item {i}"])
                await asyncio.sleep(0.010 + step_s * i)

        await asyncio.gather(*(client(i) for i in range(n)))
        await b.close()

    asyncio.run(clients())
    return slow.calls


def test_the_window_grows_with_slow_batches_so_they_fill(monkeypatch):
    """Clients answered by one batch send their next request 10-31 ms later (staggered). With a
    fixed 5 ms window a slow predictor (1 s a batch) then gets alternating small and large
    batches; a window of 5 % of the last batch's time (50 ms) gathers them all into one."""
    from pricer.serve import batcher as batching

    adaptive = batches_of_staggered_clients(0.003)
    assert adaptive[1:] == [8] * (len(adaptive) - 1), adaptive  # full batches
    monkeypatch.setattr(batching, "WINDOW_SHARE", 0.0)  # a fixed 5 ms window,
    monkeypatch.setattr(batching, "STRETCH_SHARE", 0.0)  # never stretched
    fixed = batches_of_staggered_clients(0.003)
    assert min(fixed[1:]) < 8 and len(fixed) > len(adaptive), fixed


def test_the_window_stretches_while_requests_keep_arriving(monkeypatch):
    """Clients answered together come back one after another, 12 ms apart (the last 94 ms after
    the first): past the 5 % window (50 ms of a 1 s batch). While they keep arriving within
    QUIET_S (20 ms) the window stretches (up to 25 %), so every batch after the first is full;
    without the stretch, the late ones miss the batch and wait a whole other one."""
    from pricer.serve import batcher as batching

    stretched = batches_of_staggered_clients(0.012)
    assert stretched[1:] == [8] * (len(stretched) - 1), stretched
    monkeypatch.setattr(batching, "STRETCH_SHARE", batching.WINDOW_SHARE)  # no stretch
    fixed = batches_of_staggered_clients(0.012)
    assert min(fixed[1:]) < 8 and len(fixed) > len(stretched), fixed


# ---- `pricer serve`: any predictor, made as pricer eval makes it ----
def served_by_cli(monkeypatch, *args):
    """The app `pricer serve ARGS` would run (uvicorn.run is where the socket would open)."""
    import uvicorn

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: apps.append(app))
    result = pricer("serve", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert len(apps) == 1
    return TestClient(apps[0])


def price_of(client, text="A red kettle"):
    answer = client.post("/v1/price", json={"text": text})
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"][0]["price"]


def test_cli_serves_any_predictor_of_the_registry(monkeypatch, tmp_path):
    import json

    from conftest import AMAZON_TRAIN
    from pricer.data.items import read_items
    from pricer.data.prompts import as_test_prompt
    from pricer.predict.fit import fit_predictor
    from pricer.predict.ensemble import fit_ensemble
    from pricer.predict.registry import make_predictor

    with served_by_cli(monkeypatch, "--predictor", "constant", "--opt", "value=77") as client:
        assert price_of(client) == 77.0
    with served_by_cli(monkeypatch, "--predictor", "constant", "--value", "12.5") as client:
        assert price_of(client) == 12.5  # the old flag

    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:300]) + "\n")
    items = read_items(train)
    fitted = make_predictor("features-lr")
    fit_predictor(fitted, items, (0.5, 1e6))
    saved = fitted.save(tmp_path / "features-lr.skops")
    expected = fitted.predict([as_test_prompt("A red kettle")])[0]
    with served_by_cli(monkeypatch, "--predictor", "baseline", "--path", saved) as client:
        assert price_of(client) == pytest.approx(expected)
    with served_by_cli(monkeypatch, "--predictor", "features-lr", "--train", train) as client:
        assert price_of(client) == pytest.approx(expected)  # fitted on --train before serving

    weights = tmp_path / "ens.json"
    ensemble, _ = fit_ensemble([{"predictor": "constant", "options": {}},
                                {"predictor": "features-lr", "options": {}}], items, weights,
                               val_size=60)
    assert json.loads(weights.read_text())["members"]
    with served_by_cli(monkeypatch, "--predictor", "ensemble", "--path", weights) as client:
        assert price_of(client) == pytest.approx(ensemble.predict([as_test_prompt("A red kettle")])[0])
    with served_by_cli(monkeypatch, "--run", weights) as client:  # what the file holds decides
        assert price_of(client) == pytest.approx(ensemble.predict([as_test_prompt("A red kettle")])[0])
        assert client.get("/health").json()["predictor"] == "ensemble"
