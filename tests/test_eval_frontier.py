"""The frontier predictor against a small local OpenAI-compatible server (never the internet)."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST
from pricer.data.items import read_items
from pricer.errors import PricerError
from pricer.evaluate.harness import evaluate
from pricer.predict.frontier import SYSTEM, FrontierPredictor
from pricer.predict.registry import make_predictor


class FakeAPI(BaseHTTPRequestHandler):
    """Replies with the statuses queued in `server.plan` (then 200), recording every request;
    an item whose text holds "Moen" fails with 500 when `server.fail_moen` is set. Error bodies
    echo the request's Authorization header, as a careless server might."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body,
                                     "auth": self.headers.get("Authorization")})
        user = body["messages"][1]["content"]
        status = self.server.plan.pop(0) if self.server.plan else 200
        if self.server.fail_moen and "Moen" in user:
            status = 500
        if status != 200:
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            echo = {"error": {"message": f"busy; you sent {self.headers.get('Authorization')}"}}
            self.wfile.write(json.dumps(echo).encode())
            return
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
    server.requests, server.plan, server.fail_moen = [], [], False
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
    p = FrontierPredictor("m", base_url=url(api), workers=1)
    assert p.predict(["How much does this cost to the nearest dollar?\n\nA thing\n\nPrice is $"]) == [89.0]
    assert len(api.requests) == 3


def test_partial_failure_is_flagged_and_the_key_never_written(api, tmp_path):
    """One item fails (500 after its retries): scored as a miss, flagged in the result and the
    leaderboard; the server's error body echoes the key, which is redacted everywhere."""
    from pricer.evaluate.leaderboard import read_results, rows

    items = read_items(AMAZON_TEST)[:3]  # the first is the Moen faucet
    api.fail_moen = True
    p = FrontierPredictor("m", base_url=url(api), api_key="sk-secret-123", max_retries=0)
    result = evaluate(p, items, results_dir=tmp_path, show=False)
    assert result["failed"] == 1 and result["n"] == 3 and result["invalid"] == 1
    assert [e["id"] for e in result["errors"]] == [items[0].id]
    assert "API error 500" in result["errors"][0]["error"] and "***" in result["errors"][0]["error"]
    written = "".join(f.read_text() for f in tmp_path.glob("*.json"))
    assert "sk-secret-123" not in written
    board = rows(read_results(tmp_path)[0], with_reference=False)
    assert board[0]["predictor"] == "frontier (1 failed)"


def test_every_item_failing_is_an_error_with_no_result(api, tmp_path):
    api.fail_moen = True
    items = [i for i in read_items(AMAZON_TEST)[:1]]
    res = pricer("eval", "--data", AMAZON_TEST, "--predictor", "frontier", "--base-url", url(api),
                 "--api-model", "m", "--opt", "max_retries=0", "--opt", "api_key=sk-secret-123",
                 "--size", "1", "--results", tmp_path)
    assert_bad_input(res, "every item failed", "API error 500")
    assert "sk-secret-123" not in res.stdout + res.stderr
    assert items and not any(tmp_path.iterdir())


def test_refused_key_is_a_clear_error(api):
    api.plan = [401]
    with pytest.raises(PricerError, match="refused the key"):
        FrontierPredictor("m", base_url=url(api), workers=1).predict(["x"])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_no_network_stops_at_once_with_one_line(tmp_path):
    """Connection refused: exit 2 after one attempt (no retries, no per-item loop), no result,
    and the user:password of the URL is not echoed."""
    base = f"http://user:hunter2@127.0.0.1:{closed_port()}/v1"
    res = pricer("eval", "--data", AMAZON_TEST, "--predictor", "frontier", "--base-url", base,
                 "--api-model", "m", "--size", "20", "--results", tmp_path)
    line = assert_bad_input(res, "cannot reach the API")
    assert "hunter2" not in line and "***@127.0.0.1" in line
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_settings_never_hold_secrets(monkeypatch):
    monkeypatch.setenv("PRICER_API_KEY", "sk-env-key")
    p = FrontierPredictor("m", base_url="https://me:pw@example.invalid/v1")
    text = json.dumps(p.settings())
    assert "sk-env-key" not in text and "pw@" not in text and "***@example.invalid" in text


def test_cli_eval_frontier_json(api, tmp_path):
    res = assert_ok(pricer("eval", "--data", AMAZON_TEST, "--predictor", "frontier", "--base-url",
                           url(api), "--api-model", "local-model", "--size", "3", "--json",
                           "--results", tmp_path))
    result = json.loads(res.stdout)
    assert result["n"] == 3 and result["settings"]["model"] == "local-model"
    assert result["failed"] == 0
    truths = [i.price for i in read_items(AMAZON_TEST)[:3]]  # the fake API answers 1,234.50 / 89
    guesses = [1234.5 if n == 1 else 89.0 for n in range(3)]
    assert result["error"] == pytest.approx(sum(abs(g - t) for g, t in zip(guesses, truths)) / 3)
    assert {r["body"]["model"] for r in api.requests} == {"local-model"}
