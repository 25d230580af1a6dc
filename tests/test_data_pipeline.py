"""`pricer data` end to end: the CLI contract, bad input, user files, parallel = serial, atomic
save. Real raw records from ../shared/data; bad rows made from them."""

import gzip
import json
import subprocess
import sys
from collections import Counter

import pytest
from typer.testing import CliRunner

from conftest import RAW_SAMPLES
from pricer.cli import app
from pricer.data import pipeline, store
from pricer.data.curate import REFERENCE
from pricer.data.prompts import PRICE_PREFIX, QUESTION

RAW = RAW_SAMPLES / "raw_meta_jsonl_format.jsonl"
HF = RAW_SAMPLES / "raw_meta_hf_format.jsonl"
runner = CliRunner()


def cli(*args):
    result = runner.invoke(app, ["data", *map(str, args)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def run_main(*args):
    """The real entry point in a subprocess: PricerError -> one red line, exit code 2."""
    code = "from pricer.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, "data", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from pricer.models.load import load_tokenizer

    return load_tokenizer(str(default_model_dir))


@pytest.mark.parametrize("path", [HF, RAW], ids=["hf-format", "raw-format"])
def test_cli_contract_on_the_six_raw_records(tmp_path, path):
    out = tmp_path / "data"
    cli("--input", path, "--out", out)
    report = json.loads((out / "report.json").read_text())
    assert report["read"] == 6 and report["dropped"]["no_price"] == 3
    assert report["kept"] == 3
    assert report["read"] == report["kept"] + sum(report["dropped"].values())
    for reason in ("bad_json", "no_price", "bad_price", "price_out_of_range", "too_short",
                   "too_few_tokens"):
        assert reason in report["dropped"]
    data = store.load(out)
    assert set(data) == {"train", "test"}
    assert data["train"].column_names == ["text", "price", "category"]
    rows = data["train"].to_list() + data["test"].to_list()
    assert sorted(r["price"] for r in rows) == [8.99, 11.59, 210.46]
    for row in data["train"]:
        assert row["text"].startswith(QUESTION + "\n\n")
        assert row["text"].endswith(f"\n\n{PRICE_PREFIX}{round(row['price'])}.00")
    for row in data["test"]:
        assert row["text"].endswith("\n\n" + PRICE_PREFIX)
    assert report["tokens"]["max"] == 160 and report["format"] == "amazon-raw"


def raw_line(**changes) -> bytes:
    record = json.loads(RAW.read_text().splitlines()[1]) | changes  # the $11.59 Keurig tool
    return (json.dumps(record) + "\n").encode()


BAD_LINES = [
    (raw_line(), None),
    (raw_line(price="$1,299.99"), "bad_price"),          # the reference's float() fails
    (b'{"title": "cut short", "price": 1\n', "bad_json"),
    (raw_line(title="caf\u00e9").replace(b"caf\\u00e9", b"caf\xff"), "bad_encoding"),
    (raw_line(price=None), "no_price"),
    (raw_line(price="None"), "no_price"),
    (raw_line(price="from 12.99"), "bad_price"),
    (raw_line(features=[{"not": "a string"}]), "bad_field"),
    (raw_line(title=["A", "list", "title"]), None),     # lists of strings are joined
    (b"[1, 2]\n", "bad_json"),
    (raw_line(price=5000), "price_out_of_range"),
    (raw_line(description=["short"], features=[], details={}), "too_short"),
    (raw_line(description=["word " * 70], features=[], details={}), "too_few_tokens"),
    (b"   \n", None),                                   # blank lines are not records
]


def test_bad_rows_are_counted_per_reason_never_crash(tmp_path):
    path = tmp_path / "raw_meta_Appliances.jsonl.gz"  # gzip, category from the file name
    with gzip.open(path, "wb") as f:
        f.write(b"".join(line for line, _ in BAD_LINES))
    out = tmp_path / "data"
    cli("--input", path, "--out", out)
    report = json.loads((out / "report.json").read_text())
    expected = Counter(r for _, r in BAD_LINES if r)
    assert report["read"] == len(BAD_LINES) - 1
    assert report["kept"] == 2
    assert {k: v for k, v in report["dropped"].items() if v} == dict(expected)
    assert report["categories"]["train"] == {"Appliances": 1} or report["categories"]["test"] \
        == {"Appliances": 1}


def test_user_csv_with_joined_columns_and_lenient_prices(tmp_path):
    body = "A sturdy steel widget for the workshop, with a ten year warranty. " * 6
    path = tmp_path / "listings.csv"
    path.write_bytes(
        b"name,details,cost,kind\n"
        + f'"Widget","{body}","$1,299.99",tools\n'.encode()
        + f'"Gadget","{body}","from 12.99",tools\n'.encode()
        + f'"Gizmo","{body}",,toys\n'.encode()
        + f'"Doohickey","{body}",19.5,toys\n'.encode()
        + f'"Huge","{"x" * 200_000}",10,toys\n'.encode()  # over the csv module's field limit
        + f'"Bad \xff bytes","{body}",10,toys\n'.encode("latin-1"))
    out = tmp_path / "data"
    cli("--input", path, "--text-column", "name,details", "--price-column", "cost",
        "--category-column", "kind", "--max-price", "5000", "--min-tokens", "20", "--out", out)
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "csv" and report["read"] == 6 and report["kept"] == 2
    dropped = {k: v for k, v in report["dropped"].items() if v}
    assert dropped == {"bad_price": 1, "no_price": 1, "bad_encoding": 1, "bad_row": 1}
    rows = store.load(out)["train"].to_list() + store.load(out)["test"].to_list()
    by_price = {r["price"]: r for r in rows}
    assert set(by_price) == {1299.99, 19.5}
    assert by_price[1299.99]["category"] == "tools"
    assert "\n\nWidget\nA sturdy steel widget" in by_price[1299.99]["text"]


def test_user_parquet_and_jsonl_go_through_the_same_rules(tmp_path, tokenizer):
    import pandas as pd

    lines = json.loads(RAW.read_text().splitlines()[4])  # the $210.46 Fender stand
    text = lines["title"] + "\n" + "\n".join(lines["description"] + lines["features"])
    frame = pd.DataFrame({"text": [text, "too short"], "price": [210.46, 3.0]})
    frame.to_parquet(tmp_path / "mine.parquet")
    frame.to_json(tmp_path / "mine.jsonl", orient="records", lines=True)
    texts = []
    for name in ("mine.parquet", "mine.jsonl"):
        items, read, dropped, fmt = pipeline.curate_source(
            tmp_path / name, tokenizer=tokenizer)
        assert fmt == name.split(".")[1] and read == 2 and dropped == Counter(too_short=1)
        assert items[0].price == 210.46 and items[0].tokens == 160
        texts.append(items[0].text)
    assert texts[0] == texts[1] and texts[0].startswith("Fender Classic Series Case Stand")


def test_parallel_workers_give_the_same_items_as_one_process(tmp_path, tokenizer):
    lines = [line for line, _ in BAD_LINES if line.strip()] * 40  # the reader skips blanks
    chunks = [(list(enumerate(lines[i:i + 50], i + 1)), i) for i in range(0, len(lines), 50)]
    spec = pipeline.Spec("amazon", REFERENCE)
    one = list(pipeline.ordered_map(iter(chunks), spec, tokenizer, workers=1))
    two = list(pipeline.ordered_map(iter(chunks), spec, tokenizer, workers=2, window=1))
    assert [pos for _, pos in one] == [pos for _, pos in two]
    assert [[i.text for i in r[0]] for r, _ in one] == [[i.text for i in r[0]] for r, _ in two]
    assert sum((r[1] for r, _ in two), Counter()) == sum((r[1] for r, _ in one), Counter())
    assert sum(r[2] for r, _ in two) == 13 * 40


def test_missing_file_column_and_empty_file(tmp_path):
    result = run_main("--input", tmp_path / "nope.jsonl", "--out", tmp_path / "o")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no such file" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    csv = tmp_path / "x.csv"
    csv.write_text("title,price\nA thing,3\n")
    result = run_main("--input", csv, "--text-column", "text", "--out", tmp_path / "o")
    assert result.returncode == 2 and "no 'text' column" in result.stderr
    assert not (tmp_path / "o").exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "e"
    assert "input is empty" in cli("--input", empty, "--out", out).output
    report = json.loads((out / "report.json").read_text())
    assert report["read"] == 0 and report["kept"] == 0
    assert len(store.load(out)["train"]) == 0


def test_save_is_atomic(tmp_path, monkeypatch):
    from datasets import DatasetDict

    out = tmp_path / "data"
    cli("--input", RAW, "--out", out)
    before = store.load(out)["train"].to_list()

    def crash(self, *args, **kwargs):
        (tmp_path / "crashed").touch()
        raise KeyboardInterrupt

    monkeypatch.setattr(DatasetDict, "save_to_disk", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save(store.load(out), out, {"read": 0}, overwrite=True)
    assert (tmp_path / "crashed").exists()
    assert store.load(out)["train"].to_list() == before  # the old data set is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crashed", "data"]  # no staging left
    with pytest.raises(KeyboardInterrupt):
        store.save(store.load(out), tmp_path / "fresh", {"read": 0})
    assert not (tmp_path / "fresh").exists()
    monkeypatch.undo()
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("mine")
    from pricer.errors import PricerError

    with pytest.raises(PricerError):
        store.save(store.load(out), tmp_path / "precious", {})
