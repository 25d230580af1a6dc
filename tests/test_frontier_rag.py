"""`frontier-rag`: real MiniLM retrieval over 40 real train items, and the requests a local
OpenAI-compatible server receives (the frontier tests' fake server; never the internet)."""

import json

import numpy as np
import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, AMAZON_TRAIN
from pricer.data.items import read_items
from pricer.data.prompts import description
from pricer.errors import PricerError
from pricer.predict.neighbours import Neighbours, load_neighbours
from pricer.predict.rag import CONTEXT, QUESTION_INTRO
from pricer.predict.registry import make_predictor
from test_eval_frontier import api, closed_port, url  # noqa: F401  (api: the fake server fixture)

TRAIN_SIZE = 40


@pytest.fixture(scope="module")
def train():
    return read_items(AMAZON_TRAIN, split="train")[:TRAIN_SIZE]


@pytest.fixture(scope="module")
def index_dir(train, tmp_path_factory):
    """The 40 train items indexed by a fit and saved by it (path= a folder not there yet)."""
    folder = tmp_path_factory.mktemp("rag") / "index"
    p = make_predictor("frontier-rag", api_model="m", path=folder)
    assert p.needs_fit
    p.fit([i.prompt for i in train], [i.price for i in train])
    assert not p.needs_fit and folder.is_dir()
    return folder


def user_messages(server) -> list[str]:
    return [r["body"]["messages"][1]["content"] for r in server.requests]


def test_near_duplicate_ranks_first_and_the_item_itself_is_never_retrieved(train):
    index = Neighbours(train)
    probes = range(0, TRAIN_SIZE, 8)
    # a near-duplicate: the same listing with the last third of its text cut off
    cut = [description(train[j].prompt)[: len(description(train[j].prompt)) * 2 // 3] for j in probes]
    for j, found in zip(probes, index.search(cut, k=3)):
        assert found[0]["id"] == train[j].id and found[0]["price"] == train[j].price
        assert found[0]["similarity"] > found[1]["similarity"] >= found[2]["similarity"]
    # the exact text of an indexed item: it is left out (its price would leak), k others remain
    for j, found in zip(probes, index.search([train[j].prompt for j in probes], k=5)):
        assert len(found) == 5 and train[j].id not in [f["id"] for f in found]
    # nor with other spacing; and k beyond the others gives all the others
    spaced = "  " + description(train[0].prompt).replace(" ", "  ") + "\n"
    others = {i.id for i in train[1:]}
    assert {f["id"] for f in index.search([spaced], k=TRAIN_SIZE)[0]} == others
    assert {f["id"] for f in index.search([train[0].prompt], k=TRAIN_SIZE + 3)[0]} == others
    # semantics, not words: the other fender flares are the nearest to the RDJ fender flares
    flares = next(i for i in train if i.id == "official-1002")
    assert index.search([flares.prompt], k=1)[0][0]["id"] == "official-1021"


def test_the_request_lists_the_k_neighbours_with_prices_before_the_item(api, tmp_path):
    """Through `pricer eval`: fitted on the first 40 train items, index saved to --path; the
    server sees the reference's context, the 5 most similar train items with their prices, then
    the test item; a second run loads the saved index (no train split) and sends the same."""
    index = tmp_path / "index"
    first = pricer("eval", "--data", AMAZON_TEST, "--train", AMAZON_TRAIN, "--max-items",
                   TRAIN_SIZE, "--predictor", "frontier-rag", "--base-url", url(api),
                   "--api-model", "m", "--path", index, "--size", "2", "--json",
                   "--results", tmp_path / "results")
    assert_ok(first)
    result = json.loads(first.stdout)
    assert result["settings"]["k"] == 5 and result["settings"]["index_size"] == TRAIN_SIZE
    assert result["n"] == 2 and result["failed"] == 0
    sent = sorted(user_messages(api))
    assert len(sent) == 2

    train = {description(i.prompt).strip(): i.price for i in read_items(AMAZON_TRAIN, split="train")[:TRAIN_SIZE]}
    expected = load_neighbours(index).search([i.prompt for i in read_items(AMAZON_TEST)[:2]], k=5)
    for item, found in zip(read_items(AMAZON_TEST)[:2], expected):
        user = next(u for u in sent if u.endswith(description(item.prompt)))
        assert user.startswith(CONTEXT + "\n\nPotentially related product:\n")
        context, question = user.split(f"\n\n{QUESTION_INTRO}\n\n")
        assert question == "How much does this cost?\n\n" + description(item.prompt)
        shown = context.split("Potentially related product:\n")[1:]
        assert len(shown) == 5
        for block, neighbour in zip(shown, found):  # most similar first, each with its price
            text, price = block.strip().rsplit("\nPrice is $", 1)
            assert text.split("\n")[0] == neighbour["title"]
            assert float(price) == pytest.approx(train[text]) == pytest.approx(neighbour["price"])
    assert (index / "vectors.npy").is_file() and (index / "items.json").is_file()
    assert np.load(index / "vectors.npy", allow_pickle=False).shape == (TRAIN_SIZE, 384)

    api.requests.clear()
    again = pricer("eval", "--data", AMAZON_TEST, "--predictor", "frontier-rag", "--base-url",
                   url(api), "--api-model", "m", "--path", index, "--size", "2",
                   "--results", tmp_path / "results")
    assert_ok(again)
    assert sorted(user_messages(api)) == sent


def test_saved_index_round_trips(index_dir, train, api):
    fitted = make_predictor("frontier-rag", api_model="m", base_url=url(api))
    fitted.fit([i.prompt for i in train], [i.price for i in train])
    loaded = make_predictor("frontier-rag", api_model="m", base_url=url(api), path=index_dir, k=3)
    assert not loaded.needs_fit and loaded.settings()["index_size"] == TRAIN_SIZE
    queries = [i.prompt for i in read_items(AMAZON_TEST)[:4]]
    fitted.k = 3
    assert loaded.similar(queries) == fitted.similar(queries)
    details = loaded.predict_details(queries[:2])
    assert [d["price"] for d in details] == [89.0, 1234.5]  # the fake server: 1234.50 for the Cello
    assert [[n["id"] for n in d["neighbours"]] for d in details] == \
        [[n["id"] for n in s] for s in fitted.similar(queries[:2])]
    assert set(details[0]["neighbours"][0]) == {"id", "title", "price", "similarity"}


def test_no_network_is_one_clear_line(index_dir):
    base = f"http://user:hunter2@127.0.0.1:{closed_port()}/v1"
    res = pricer("eval", "--data", AMAZON_TEST, "--predictor", "frontier-rag", "--base-url", base,
                 "--api-model", "m", "--path", index_dir, "--size", "5", "--results", index_dir.parent / "r")
    line = assert_bad_input(res, "cannot reach the API")
    assert "hunter2" not in line


@pytest.mark.parametrize("k", ["0", "-2"])
def test_k_below_one_is_refused(k, index_dir, tmp_path):
    res = pricer("eval", "--data", AMAZON_TEST, "--predictor", "frontier-rag", "--api-model", "m",
                 "--path", index_dir, "--opt", f"k={k}", "--results", tmp_path)
    assert_bad_input(res, "k must be at least 1")


def test_a_bad_or_pickled_index_is_refused(tmp_path, index_dir):
    (tmp_path / "empty").mkdir()
    res = pricer("eval", "--data", AMAZON_TEST, "--predictor", "frontier-rag", "--api-model", "m",
                 "--path", tmp_path / "empty", "--results", tmp_path / "r")
    assert_bad_input(res, "not a saved similar-items index")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "items.json").write_text((index_dir / "items.json").read_text())
    np.save(pickled / "vectors.npy", np.array([object()] * TRAIN_SIZE), allow_pickle=True)
    with pytest.raises(PricerError, match="vectors.npy: cannot read"):
        load_neighbours(pickled)
