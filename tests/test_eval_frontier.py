"""The frontier predictor against a small local OpenAI-compatible server (never the internet)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import AMAZON_TEST
from pricer.data.items import read_items
from pricer.errors import PricerError
from pricer.evaluate.harness import evaluate
from pricer.predict.frontier import SYSTEM, FrontierPredictor
from pricer.predict.registry import make_predictor


class FakeAPI(BaseHTTPRequestHandler):
    """Replies with the statuses queued in `server.plan` (then 200), recording every request."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body,
                                     "auth": self.headers.get("Authorization")})
        status = self.server.plan.pop(0) if self.server.plan else 200
        if status != 200:
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(b'{"error": "busy"}')
            return
        user = body["messages"][1]["content"]
        reply = {"choices": [{"message": {"role": "assistant",
                                          "content": "1,234.50" if "Cello" in user else "89"}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    server.requests, server.plan = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server):
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def test_reference_prompt_and_price(api, monkeypatch):
    monkeypatch.setenv("PRICER_API_KEY", "sk-test")
    items = read_items(AMAZON_TEST)[:2]
    p = make_predictor("frontier", api_model="gpt-test", base_url=url(api))
    assert p.predict([items[0].prompt, items[1].prompt]) == [89.0, 1234.5]
    request = next(r for r in api.requests if "Moen" in r["body"]["messages"][1]["content"])
    body = request["body"]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert (body["model"], body["seed"], body["max_tokens"]) == ("gpt-test", 42, 5)
    system, user, prefill = body["messages"]
    assert system == {"role": "system", "content": SYSTEM}
    assert prefill == {"role": "assistant", "content": "Price is $"}
    assert user["content"].startswith("How much does this cost?\n\nMoen Belfield")
    assert "Price is $" not in user["content"] and "nearest dollar" not in user["content"]
    assert "sk-test" not in json.dumps(p.settings())


def test_retries_429_then_succeeds(api):
    api.plan = [429, 503]
    p = FrontierPredictor("m", base_url=url(api), backoff=0.01, workers=1)
    assert p.predict(["How much does this cost to the nearest dollar?\n\nA thing\n\nPrice is $"]) == [89.0]
    assert len(api.requests) == 3


def test_gives_up_after_retries_and_harness_records_it(api):
    items = read_items(AMAZON_TEST)[:3]
    api.plan = [500] * 20
    p = FrontierPredictor("m", base_url=url(api), backoff=0.001, retries=2, workers=1)
    result = evaluate(p, items, show=False)
    # the batch failed, then each item was retried alone: every item failed after 3 tries
    assert len(result["errors"]) == 3 and "API error 500" in result["errors"][0]["error"]
    assert result["invalid"] == 3 and result["n"] == 3


def test_refused_key_is_a_clear_error(api):
    api.plan = [401]
    with pytest.raises(PricerError, match="refused the key"):
        FrontierPredictor("m", base_url=url(api), workers=1).predict(["x"])


def test_unreachable_server_times_out_into_an_error():
    p = FrontierPredictor("m", base_url="http://127.0.0.1:9/v1", retries=1, backoff=0.001,
                          timeout=1, workers=1)
    with pytest.raises(RuntimeError, match="unreachable"):
        p.predict(["x"])


def test_cli_eval_frontier_json(api, tmp_path):
    from typer.testing import CliRunner

    from pricer.cli import app

    res = CliRunner().invoke(app, ["eval", "--data", str(AMAZON_TEST), "--predictor", "frontier",
                                   "--base-url", url(api), "--api-model", "local-model",
                                   "--size", "3", "--json", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["n"] == 3 and result["settings"]["model"] == "local-model"
    truths = [i.price for i in read_items(AMAZON_TEST)[:3]]  # the fake API answers 1,234.50 / 89
    guesses = [1234.5 if n == 1 else 89.0 for n in range(3)]
    assert result["error"] == pytest.approx(sum(abs(g - t) for g, t in zip(guesses, truths)) / 3)
    assert {r["body"]["model"] for r in api.requests} == {"local-model"}
