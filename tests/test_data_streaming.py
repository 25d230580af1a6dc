"""`pricer data` in bounded memory (issue 19, part 4): the curated items wait on disk (`spool`),
balancing and the split hold only numbers, and the data set is written in batches. The output
must be the one the in-memory code gave, item for item; a killed or failed run must leave
nothing that a later run takes as done."""

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from itertools import cycle

import numpy as np
import pytest

from conftest import AMAZON_TRAIN, RAW_SAMPLES, ROOT
from pricer.data import balance as balancing
from pricer.data import pipeline, store
from pricer.data.spool import Spool


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from pricer.models.load import load_tokenizer

    return load_tokenizer(str(default_model_dir))


def write_raw(path, lines, listings=800):
    """Raw Amazon lines as benchmarks/bench_curation.py makes them (real listings in the layout
    of the six real raw records), a fifth without a price, and every listing several times (the
    same text twice in the input: the split must keep it out of test)."""
    shapes = [json.loads(line) for line in
              (RAW_SAMPLES / "raw_meta_jsonl_format.jsonl").read_text().splitlines()]
    items = [json.loads(line) for line in AMAZON_TRAIN.read_text().splitlines()[:listings]]
    with open(path, "w") as f:
        for n, item, shape in zip(range(lines), cycle(items), cycle(shapes)):
            title, _, rest = item["text"].partition("\n")
            price = None if n % 5 == 4 else str(item["price"])
            f.write(json.dumps(dict(shape, title=title, description=[rest], features=[],
                                    price=price, parent_asin=f"B{n:09d}")) + "\n")


def in_memory_dataset(items, settings: balancing.BalanceSettings, fmt="2024", tokenizer=None):
    """The code before streaming, kept as the reference: every item in memory, bucketed by
    round(price), the big cheap buckets sampled, shuffled, split, and made into prompts."""
    from collections import defaultdict

    slots = defaultdict(list)
    for item in items:
        slots[round(item.price)].append(item)
    rng = np.random.RandomState(settings.seed)
    sample = []
    for price in sorted(p for p in slots if p >= 1):
        slot = slots[price]
        if price >= settings.keep_from or len(slot) <= settings.cap():
            sample.extend(slot)
        else:
            weights = np.array([settings.weights.get(i.category, settings.default_weight)
                                for i in slot], dtype=float)
            chosen = rng.choice(len(slot), size=settings.cap(), replace=False,
                                p=weights / weights.sum())
            sample.extend(slot[i] for i in chosen)
    import random

    random.Random(settings.seed).shuffle(sample)
    n_train, n_test = balancing.split_sizes(len(sample), settings.train_size, settings.test_size)
    train = sample[:n_train]
    in_train = {i.text for i in train}
    test = [i for i in sample[n_train:] if i.text not in in_train][:n_test]
    return store.to_dataset_dict(train, test, fmt, tokenizer), len(sample)


def rows(data):
    return {name: data[name].to_dict() for name in ("train", "test")}


def test_streamed_output_is_the_in_memory_output(tmp_path, tokenizer):
    raw = tmp_path / "raw_meta_Bench.jsonl"
    write_raw(raw, 3000)
    settings = balancing.BalanceSettings(train_size=1200, test_size=150)  # cap 4: real sampling
    report = pipeline.build_dataset(tmp_path / "new", tokenizer=tokenizer, inputs=[raw],
                                    balance=settings, workers=2)
    items, read, dropped, _ = pipeline.curate_source(raw, tokenizer=tokenizer, workers=1)
    assert read == 3000 and dropped["no_price"] == 600
    expected, sampled = in_memory_dataset(items, settings)
    assert report["dropped"]["balanced_out"] == len(items) - sampled > 0
    assert report["splits"] == {"train": 1200, "test": len(expected["test"])}
    assert rows(store.load(tmp_path / "new")) == rows(expected)
    # listings that were in the input twice: in train, and then passed over for test
    assert len(set(expected["train"]["text"])) < 1200 and 0 < len(expected["test"]) < 150

    # a list goes through the same spool; the 2025 format cuts texts batch by batch
    settings = balancing.BalanceSettings(train_size=900, test_size=100, bucket_cap=3)
    for fmt in ("2024", "2025"):
        out = tmp_path / f"list-{fmt}"
        pipeline.make_dataset(items, read, dropped, out, balance=settings,
                              settings=pipeline.settings_for("amazon-raw", {"prompt_format": fmt}),
                              tokenizer=tokenizer)
        expected, _ = in_memory_dataset(items, settings, fmt, tokenizer)
        assert rows(store.load(out)) == rows(expected)


def test_spool_gives_back_what_it_was_given(tmp_path):
    from pricer.data.report import Curated

    given = [Curated("é" * n + "\n€", n + 0.25, [None, "A", "B"][n % 3], n) for n in range(50)]
    with Spool(tmp_path) as spool:
        spool.extend(given)
        assert len(spool) == 50 and not list(tmp_path.iterdir())  # the file has no name
        assert list(spool.items([7, 3, 7, 49])) == [given[i] for i in (7, 3, 7, 49)]
        assert spool.categories() == [i.category for i in given]
        assert spool.digest(4) != spool.digest(5)
        assert next(spool.items([1], texts=False)).text is None


def test_failed_save_leaves_no_data_set_and_keeps_the_old_one(tmp_path, monkeypatch, tokenizer):
    raw = RAW_SAMPLES / "raw_meta_jsonl_format.jsonl"
    out = tmp_path / "data"
    pipeline.build_dataset(out, tokenizer=tokenizer, inputs=[raw])
    before = rows(store.load(out))
    calls = Counter()

    def fail(items, split, *args):
        calls[split] += len(items)
        if split == "test" and items:  # train is written by now
            raise OSError(28, "No space left on device")
        return real(items, split, *args)

    real = store.columns
    monkeypatch.setattr(store, "columns", fail)
    with pytest.raises(Exception, match="No space left"):
        pipeline.build_dataset(out, tokenizer=tokenizer, inputs=[raw], overwrite=True)
    with pytest.raises(Exception, match="No space left"):
        pipeline.build_dataset(tmp_path / "fresh", tokenizer=tokenizer, inputs=[raw])
    assert calls["train"] == 2 * 2 and calls["test"] == 2 * 1  # 3 kept: 2 train, 1 test
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging, no spool
    assert rows(store.load(out)) == before


KILL_IN_SAVE = """
import os, signal, sys
from pricer.cli import main
from pricer.data import store
real = store.columns
def columns(items, split, *args):
    if split == "test" and items:  # train is on disk, half the data set: die here
        os.kill(os.getpid(), signal.SIGKILL)
    return real(items, split, *args)
store.columns = columns
sys.argv = ["pricer", "data", *sys.argv[1:]]
main()
"""


def test_a_run_killed_while_saving_leaves_nothing_taken_as_done(tmp_path):
    raw = tmp_path / "raw_meta_Bench.jsonl"
    write_raw(raw, 600, listings=600)
    out = tmp_path / "data"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]))
    args = ["--input", raw, "--out", out, "--train-size", "300", "--test-size", "50"]
    killed = subprocess.run([sys.executable, "-c", KILL_IN_SAVE, *map(str, args)], env=env,
                            capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    left = [p for p in tmp_path.iterdir() if p != raw]
    assert not out.exists() and len(left) == 1  # the spool had no name: only the staging folder
    assert left[0].name.startswith(".data.staging-")
    assert (left[0] / "train" / "data-00000-of-00001.arrow").stat().st_size > 0  # half-written
    assert not store.is_saved_dataset(left[0]) and not store.is_saved_dataset(out)

    again = subprocess.run([sys.executable, "-m", "pricer", "data", *map(str, args)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr  # no --overwrite needed: nothing was done
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", raw.name]  # stale one gone
    assert store.is_saved_dataset(out)
    assert store.read_report(out)["splits"] == {"train": 300, "test": 50}
