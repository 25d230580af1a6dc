"""What pricer promises about data (issue 13), each through the CLI where a user would meet it:
bad input ends with exit code 2 and one line; rows that would give silently wrong results are
refused (training, evaluation) or dropped and counted (`pricer data`, `pricer predict`); a user's
files are never deleted; a killed `pricer data` leaves no worker running and nothing stale; work
per item is bounded however big its text. Bad files are made from the real data in ../shared."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST, RAW_SAMPLES
from pricer.data import pipeline, read, store
from pricer.data.items import read_items

RAW = RAW_SAMPLES / "raw_meta_jsonl_format.jsonl"
ROOT = Path(__file__).resolve().parents[1]


def real_rows(n=5):
    return [json.loads(line) for line in AMAZON_TEST.read_text().splitlines()[:n]]


def write_csv(path: Path, rows, extra: bytes = b"") -> Path:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "text", "price"])
    for r in rows:
        writer.writerow([r["id"], r["text"], r["price"]])
    path.write_bytes(buffer.getvalue().encode() + extra)
    return path


def evaluate(data, *more):
    return pricer("eval", "--data", data, "--predictor", "constant", "--value", "10",
                  "--size", "5", *more)


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from pricer.models.load import load_tokenizer

    return load_tokenizer(str(default_model_dir))


# ---- bad input: exit 2 and one line --------------------------------------------------------------

def corrupt_parquet(path: Path) -> Path:
    import pandas as pd

    good = path.with_name("good.parquet")
    pd.DataFrame(real_rows()).to_parquet(good)
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut in the middle: no footer
    return path


def test_eval_refuses_bad_files_with_one_line(tmp_path):
    rows = real_rows()
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a data set")
    assert_bad_input(evaluate(folder), "notes", "not a saved data set")

    ragged = write_csv(tmp_path / "ragged.csv", rows, b"x9,A drill, cordless,12.99\n")
    last = f"line {len(ragged.read_bytes().splitlines())}"  # texts span lines: count them
    assert_bad_input(evaluate(ragged), "ragged.csv", last, "4 fields")

    latin = write_csv(tmp_path / "latin.csv", rows, "x9,Caf\u00e9 table,12.99\n".encode("latin-1"))
    assert_bad_input(evaluate(latin), "latin.csv", last, "utf-8")

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_bad_input(evaluate(empty), "empty.csv")

    assert_bad_input(evaluate(corrupt_parquet(tmp_path / "corrupt.parquet")), "corrupt.parquet")

    gz = tmp_path / "test.jsonl.gz"
    whole = gzip.compress(AMAZON_TEST.read_bytes())
    gz.write_bytes(whole[: len(whole) // 2])
    assert_bad_input(evaluate(gz), "test.jsonl.gz", "truncated")


def test_predict_refuses_a_corrupt_parquet_before_loading_the_model(tmp_path, tiny_llama):
    bad = corrupt_parquet(tmp_path / "corrupt.parquet")
    result = pricer("predict", "--model", tiny_llama, "--input", bad,
                    "--output", tmp_path / "out.jsonl")
    assert_bad_input(result, "corrupt.parquet")
    # the same with a model that does not exist: the file is read (and refused) first
    result = pricer("predict", "--model", tmp_path / "no-model", "--input", bad,
                    "--output", tmp_path / "out.jsonl")
    assert_bad_input(result, "corrupt.parquet")
    assert not (tmp_path / "out.jsonl").exists()


def test_data_out_under_an_unwritable_path():
    result = pricer("data", "--input", RAW, "--out", "/proc/pricer-nowhere/data")
    assert_bad_input(result, "/proc/pricer-nowhere/data", "cannot write")


def test_baselines_refuse_a_corrupt_parquet_train_file(tmp_path):
    bad = corrupt_parquet(tmp_path / "train.parquet")
    result = pricer("baselines", "--train", bad, "--test", AMAZON_TEST, "--only", "constant")
    assert_bad_input(result, "train.parquet")


# ---- no silently wrong results -----------------------------------------------------------------

def test_strict_reader_refuses_what_it_cannot_read_exactly(tmp_path):
    import pandas as pd

    rows = real_rows()
    items = read_items(write_csv(tmp_path / "ok.csv", rows))
    assert [i.price for i in items] == [r["price"] for r in rows]
    assert [i.id for i in items] == [str(r["id"]) for r in rows]
    assert [(i.prompt, i.price) for i in read_items(AMAZON_TEST)[:5]] == [
        (i.prompt, i.price) for i in items]

    jsonl = tmp_path / "latin.jsonl"
    jsonl.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows)
                      + json.dumps({"text": "Caf\u00e9", "price": 3}).encode().replace(
                          b"\\u00e9", b"\xe9") + b"\n")
    assert_bad_input(evaluate(jsonl), "latin.jsonl", "line 6", "utf-8")

    numbers = tmp_path / "numbers.parquet"
    pd.DataFrame({"text": [1, 2, 3], "price": [1.0, 2.0, 3.0]}).to_parquet(numbers)
    assert_bad_input(evaluate(numbers), "numbers.parquet", "row 1", "not text")

    nan = tmp_path / "nan.jsonl"
    nan.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"text": "x", "price": NaN}\n')
    assert_bad_input(evaluate(nan), "nan.jsonl", "line 6", "finite")


def test_lenient_reader_keeps_good_rows_and_counts_bad_ones(tmp_path):
    import pandas as pd

    numbers = tmp_path / "numbers.parquet"
    pd.DataFrame({"text": [1, 2], "price": [1.0, 2.0]}).to_parquet(numbers)
    with pytest.raises(Exception, match="no row with a 'text' text"):
        read.read_texts(numbers)
    mixed = tmp_path / "mixed.parquet"
    pd.DataFrame({"text": ["A hose reel", None, "USB cable"], "id": ["a", "b", "c"]}).to_parquet(
        mixed)
    good, bad = read.read_texts(mixed)
    assert [r.id for r in good] == ["a", "c"] and bad == [(2, "no 'text' text")]

    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b'\xef\xbb\xbf{"text": "first, after a BOM"}\n'
                      b'{"text": "caf\xe9"}\n{"text": 5}\n\n{"text": "last"}\n')
    good, bad = read.read_texts(lines)
    assert [(r.line, r.text) for r in good] == [(1, "first, after a BOM"), (5, "last")]
    assert [line for line, _ in bad] == [2, 3] and "UTF-8" in bad[0][1]

    ragged = write_csv(tmp_path / "ragged.csv", real_rows(2), b"x9,A drill, cordless,12.99\n")
    good, bad = read.read_texts(ragged)
    assert len(good) == 2 and "fields" in bad[0][1]
    assert bad[0][0] == ragged.read_bytes().count(b"\n")


def test_data_counts_ragged_rows_bom_and_nan_prices(tmp_path):
    raw = RAW.read_text().splitlines()
    priced = [json.loads(line) for line in raw if json.loads(line)["price"] is not None]
    path = tmp_path / "raw_meta_Musical_Instruments.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join([
        json.dumps(priced[0]),                      # BOM on the first line: still a record
        json.dumps(priced[1] | {"price": float("nan")}),
        json.dumps(priced[2] | {"price": float("inf")}),
        json.dumps(priced[2] | {"price": "NaN"}),
    ]).encode() + b"\n")
    out = tmp_path / "data"
    assert_ok(pricer("data", "--input", path, "--out", out))
    report = store.read_report(out)
    assert report["read"] == 4 and report["kept"] == 1
    assert {k: v for k, v in report["dropped"].items() if v} == {"bad_price": 3}

    body = "A sturdy steel widget for the workshop, with a ten year warranty. " * 6
    csv = tmp_path / "listings.csv"
    csv.write_text(f'text,price\n"Widget\n{body}",12.99\nDrill, cordless {body},24,00\n')
    out = tmp_path / "csv"
    assert_ok(pricer("data", "--input", csv, "--min-tokens", "20", "--out", out))
    report = store.read_report(out)
    assert report["read"] == 2 and report["kept"] == 1
    assert {k: v for k, v in report["dropped"].items() if v} == {"bad_row": 1}
    kept = store.load(out)
    assert [*kept["train"]["price"], *kept["test"]["price"]] == [12.99]  # not a shifted $24


# ---- nothing of the user's is deleted ----------------------------------------------------------

def test_rerun_needs_overwrite_and_never_replaces_user_files(tmp_path):
    out = tmp_path / "data"
    assert_ok(pricer("data", "--input", RAW, "--out", out))
    before = store.load(out)["train"].to_list()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    line = assert_bad_input(pricer("data", "--input", empty, "--out", out), "already holds")
    assert "--overwrite" in line
    assert store.load(out)["train"].to_list() == before
    assert_ok(pricer("data", "--input", empty, "--out", out, "--overwrite"))
    assert store.read_report(out)["read"] == 0

    (out / "notes.txt").write_text("mine")  # a data set folder with a user file in it
    for flags in ([], ["--overwrite"]):
        line = assert_bad_input(pricer("data", "--input", RAW, "--out", out, *flags),
                                "did not write")
        assert "--overwrite" not in line
    assert (out / "notes.txt").read_text() == "mine"
    work = tmp_path / "work"
    work.mkdir()
    (work / "prices.csv").write_text("a,b\n")
    assert_bad_input(pricer("data", "--demo", "--out", work, "--overwrite"), "did not write")
    assert (work / "prices.csv").read_text() == "a,b\n"
    assert store.is_saved_dataset(out.parent / "data") is False


# ---- a killed `pricer data` ----------------------------------------------------------------------

def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_data_leaves_no_worker_and_no_stale_folders(tmp_path, kill):
    import psutil

    lines = RAW.read_text().splitlines()
    raw = tmp_path / "raw_meta_Musical_Instruments.jsonl"
    with open(raw, "w") as f:  # ~15 MB of real records: 2 workers for several seconds
        for n in range(6000):
            f.write(json.dumps(json.loads(lines[n % 6]) | {"parent_asin": f"B{n:09d}"}) + "\n")
    assert raw.stat().st_size > 3 * pipeline.SMALL_FILE
    out = tmp_path / "data"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]))
    parent = subprocess.Popen([sys.executable, "-m", "pricer", "data", "--input", raw, "--out",
                               out, "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    workers, deadline = [], time.monotonic() + 120
    try:
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            workers = psutil.Process(parent.pid).children()
            time.sleep(0.05)
        assert len(workers) >= 2, "the workers never started"
        parent.send_signal(kill)
        parent.wait()
        deadline = time.monotonic() + 10
        while not all(_gone(w.pid) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(w.pid) for w in workers), "a worker outlived its parent"
    finally:  # whatever happened, leave nothing of ours running
        if parent.poll() is None:
            parent.kill()
        for worker in workers:
            if not _gone(worker.pid):
                worker.kill()
    # what a kill during the save leaves behind: hidden folders named after the dead process
    for kind in ("staging", "old"):
        stale = tmp_path / f".data.{kind}-{parent.pid}-abc123"
        stale.mkdir()
        (stale / "dataset_dict.json").write_text("{}")
    mine = tmp_path / ".data.notes"  # not ours: never touched
    mine.mkdir()
    assert_ok(pricer("data", "--input", RAW, "--out", out))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".data.notes"]
    assert store.read_report(out)["read"] == 6


def test_a_kill_between_the_renames_puts_the_old_data_set_back(tmp_path):
    out = tmp_path / "data"
    assert_ok(pricer("data", "--input", RAW, "--out", out))
    before = store.load(out)["train"].to_list()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    out.rename(tmp_path / f".data.old-{dead}-abc123")  # the old set moved aside, then a kill
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert_bad_input(pricer("data", "--input", empty, "--out", out), "already holds a data set")
    assert store.load(out)["train"].to_list() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "empty.jsonl"]


# ---- bounded work on huge input ----------------------------------------------------------------

class CountingTokenizer:
    """The real tokenizer, remembering the longest text it was handed."""

    def __init__(self, tokenizer):
        self.tokenizer, self.longest = tokenizer, 0

    def __call__(self, texts, **kwargs):
        self.longest = max([self.longest, *map(len, texts)])
        return self.tokenizer(texts, **kwargs)

    def batch_decode(self, ids):
        return self.tokenizer.batch_decode(ids)


def test_a_5mb_description_is_cut_before_tokenising(tmp_path, tokenizer):
    rows = real_rows(3)
    huge = "Solid oak dining table with six chairs and a matching bench. " * 85_000
    assert len(huge) > 5_000_000
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        *rows,
        {"text": "Oak table\n" + huge, "price": 450.0},      # a 5 MB description
        {"text": huge + "\nA short second line", "price": 450.0},  # 5 MB on the title line
    ]) + "\n")
    counting = CountingTokenizer(tokenizer)
    items, count, dropped, _ = pipeline.curate_source(path, tokenizer=counting, workers=1,
                                                      overrides={"min_chars": 0, "min_tokens": 20})
    assert count == 5 and len(items) == 5 and not dropped
    assert 0 < counting.longest <= 2 * 1120 + 1  # title and contents, each cut to 1,120
    assert items[3].tokens == 160 and items[3].text.startswith("Oak table\nSolid oak dining")
