"""Curation rules (reference section 1) on the real raw records in ../shared/data."""

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import AMAZON_TRAIN, RAW_SAMPLES
from pricer.data import balance as balancing
from pricer.data.curate import (REFERENCE, USER, Drop, amazon_draft, check_price, contents_of,
                                head_ids, parse_price, scrub, scrub_details, splits_at_spaces,
                                token_rule)
from pricer.data import prompts

HF = RAW_SAMPLES / "raw_meta_hf_format.jsonl"
RAW = RAW_SAMPLES / "raw_meta_jsonl_format.jsonl"


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from pricer.models.load import load_tokenizer

    return load_tokenizer(str(default_model_dir))


def reason(fn, *args):
    with pytest.raises(Drop) as e:
        fn(*args)
    return e.value.reason


# ---- price --------------------------------------------------------------------------------------

def test_price_strict_is_float_like_the_reference():
    assert parse_price("210.46") == 210.46 and parse_price(11.59) == 11.59 and parse_price(8) == 8
    for missing in (None, "None", "", "  ", "null"):
        assert reason(parse_price, missing) == "no_price"
    for bad in ("$1,299.99", "from 12.99", "12.99 - 15.99", "inf", "nan", float("nan"),
                float("-inf"), [12.0], {"p": 1}, True):
        assert reason(parse_price, bad) == "bad_price", bad


def test_price_lenient_reads_one_currency_amount():
    assert parse_price("$1,299.99", lenient=True) == 1299.99
    assert parse_price("12.99 USD", lenient=True) == 12.99
    assert parse_price("US $ 7", lenient=True) == 7.0
    for ambiguous in ("from 12.99", "12.99 - 15.99", "about $5", "1,2,3", "$"):
        assert reason(parse_price, ambiguous, True) == "bad_price", ambiguous


def test_price_bounds_are_the_reference_ones():
    assert check_price("0.5", REFERENCE) == 0.5 and check_price("999.49", REFERENCE) == 999.49
    assert reason(check_price, "0.49", REFERENCE) == "price_out_of_range"
    assert reason(check_price, "999.5", REFERENCE) == "price_out_of_range"
    assert reason(check_price, "$1,299.99", USER) == "price_out_of_range"


# ---- text ---------------------------------------------------------------------------------------

def test_scrub_follows_the_reference_rules():
    # runs of : [ ] " { } 【 】 and whitespace -> one space; " ," -> ","; ",,," and ",," -> ",";
    # words of 7+ characters with a digit are part numbers and go.
    text = 'Hello: [World] "x" {y} 【z】\n\n a ,b,,c,,,d ABC1234 abc123 12345678'
    assert scrub(text) == "Hello World x y z a,b,c,d abc123"
    title = records(HF)[0]["title"]  # "... Hotpoint, WE1M333, WE1M504"
    assert scrub(title) == "Clothes Dryer Drum Slide, General Electric, Hotpoint,"


def test_details_scrubbing_removes_the_listed_strings():
    details = records(HF)[0]["details"]
    assert '"Batteries Included?": "No"' in details and "Best Sellers" in details
    cleaned = scrub_details(details)
    for gone in ("Batteries", "Best Sellers", "Item", "Package", "Date First", "Number", ":",
                 "By Manufacturer", "Product "):
        assert gone not in cleaned
    assert '"Manufacturer" "RPI"' in cleaned and "0.352 ounces" in cleaned


def test_both_raw_conventions_give_the_same_draft():
    for hf, raw in zip(records(HF), records(RAW)):
        assert isinstance(hf["details"], str) and isinstance(raw["details"], dict)
        try:
            expected = amazon_draft(hf, REFERENCE)
        except Drop as d:
            assert d.reason == "no_price" and reason(amazon_draft, raw, REFERENCE) == "no_price"
            continue
        assert amazon_draft(raw, REFERENCE) == expected


def test_draft_is_title_line_then_scrubbed_contents_cut_to_1120_chars():
    record = records(RAW)[4]  # Fender case stand, $210.46
    text, price, category = amazon_draft(record, REFERENCE)
    assert price == 210.46 and category == "Musical Instruments"
    title, contents = text.split("\n")
    assert title == scrub(record["title"])
    raw_contents = contents_of(record["description"], record["features"],
                               json.dumps(record["details"]))
    assert len(raw_contents) > 300
    assert contents == scrub(raw_contents[:1120])


def test_too_short_and_odd_fields():
    record = records(RAW)[1]
    assert reason(amazon_draft, dict(record, description=["tiny"], features=[], details={}),
                  REFERENCE) == "too_short"
    assert reason(amazon_draft, dict(record, features=[{"a": 1}]), REFERENCE) == "bad_field"
    assert reason(amazon_draft, dict(record, title=None), REFERENCE) == "missing_text"
    text, _, _ = amazon_draft(dict(record, title=["Two", "parts"]), REFERENCE)
    assert text.startswith("Two parts\n")
    assert reason(amazon_draft, ["not", "a", "dict"], REFERENCE) == "bad_json"


def test_token_rule_keeps_over_150_and_cuts_to_160(tokenizer):
    drafts = [amazon_draft(r, REFERENCE)[0] for r in records(RAW) if r["price"] is not None]
    drafts.append("A title\n" + "word " * 70)  # > 300 characters, but only ~70 tokens
    out = token_rule(drafts, tokenizer, REFERENCE)
    assert out[-1] is None
    for draft, kept in zip(drafts[:-1], out[:-1]):
        text, n = kept
        full = tokenizer(draft, add_special_tokens=False)["input_ids"]
        assert len(full) > 150 and n == 160
        assert text == tokenizer.decode(full[:160])
        assert draft.startswith(text.rstrip("\ufffd"))


def test_first_tokens_piece_by_piece_are_the_whole_texts_first_tokens(tokenizer):
    """head_ids encodes a text a piece at a time, cut before spaces: its ids must be the whole
    text's, on real listings and on texts made to break it (space runs, tabs, newlines, other
    Unicode spaces, digits, long words, multi-byte characters, special-token text)."""
    backend = tokenizer.backend_tokenizer
    assert splits_at_spaces(backend)  # the default model's byte-level BPE
    texts = [json.loads(line)["text"] for line in AMAZON_TRAIN.read_text().splitlines()[:400]]
    rng = random.Random(0)
    parts = ["word", "  ", " ", "\t", "\n", " \n ", "\u00a0", "\u3000", "\u2009", "12345", "$1,299.99",
             "x" * 40, "caf\u00e9", "\U0001F600", "\u4e2d\u6587", "<|endoftext|>", "'s", "...", "-"]
    texts += ["".join(rng.choice(parts) + rng.choice(["", " "]) for _ in range(300))
              for _ in range(200)]
    texts += ["", " ", "one", "x" * 5000, " lead" * 300, "trail " * 300]
    whole = [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
    for needed in (1, 161, 400):
        for chars_per_token in (1, 4):
            heads = head_ids(texts, backend, needed, chars_per_token)
            for text, full, head in zip(texts, whole, heads):
                assert head == full[:len(head)], text[:80]
                assert len(head) >= min(needed, len(full)), text[:80]


def test_first_tokens_only_for_tokenizers_that_split_at_spaces(tokenizer):
    """A tokenizer whose pre-tokenizer or normalizer could join across a space (SentencePiece's
    Metaspace, an added token that strips spaces) is encoded whole."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    metaspace = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    metaspace.pre_tokenizer = pre_tokenizers.Metaspace()
    normalized = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    normalized.normalizer = normalizers.NFKC()
    stripping = json.loads(json.dumps(spec))
    stripping["added_tokens"][0]["rstrip"] = True
    assert not splits_at_spaces(metaspace)
    assert not splits_at_spaces(normalized)
    assert not splits_at_spaces(Tokenizer.from_str(json.dumps(stripping)))


def test_prompts_are_the_reference_ones():
    text = "Fender Case Stand\nHolds three guitars"
    assert prompts.train_prompt(text, 210.46) == (
        f"{prompts.QUESTION}\n\n{text}\n\nPrice is $210.00")
    assert prompts.test_prompt(text) == (
        f"How much does this cost to the nearest dollar?\n\n{text}\n\nPrice is $")


# ---- balancing and split ----------------------------------------------------------------------

def reference_balance_and_split(items, cap, n_train, n_test):
    """The reference notebook's code, literally (with `cap` for 1200)."""
    from collections import defaultdict

    slots = defaultdict(list)
    for item in items:
        slots[round(item.price)].append(item)
    np.random.seed(42)
    random.seed(42)
    sample = []
    for i in range(1, 1000):
        slot = slots[i]
        if i >= 240:
            sample.extend(slot)
        elif len(slot) <= cap:
            sample.extend(slot)
        else:
            weights = np.array([1 if item.category == "Automotive" else 5 for item in slot])
            weights = weights / np.sum(weights)
            selected_indices = np.random.choice(len(slot), size=cap, replace=False, p=weights)
            sample.extend([slot[i] for i in selected_indices])
    random.seed(42)
    random.shuffle(sample)
    return sample[:n_train], sample[n_train:n_train + n_test]


@pytest.fixture(scope="module")
def real_items():
    rows = [json.loads(line) for line in AMAZON_TRAIN.read_text().splitlines()[:6000]]
    return [SimpleNamespace(text=r["text"], price=r["price"], category=r["category"]) for r in rows]


def test_balance_and_split_match_the_reference_code(real_items):
    settings = balancing.BalanceSettings(train_size=1500, test_size=300, bucket_cap=20)
    sample = balancing.balance(real_items, settings)
    assert len(sample) > 1800  # enough for the requested sizes: no small-data rule involved
    train, test = balancing.split(sample, settings)
    ref_train, ref_test = reference_balance_and_split(real_items, 20, 1500, 300)
    assert [id(i) for i in train] == [id(i) for i in ref_train]
    assert [id(i) for i in test] == [id(i) for i in ref_test]
    buckets = {}
    for item in sample:
        buckets[round(item.price)] = buckets.get(round(item.price), 0) + 1
    assert max(n for p, n in buckets.items() if p < 240) == 20
    assert sum(i.price >= 239.5 for i in sample) == sum(i.price >= 239.5 for i in real_items)
    assert len(sample) < len(real_items)


def test_split_is_deterministic_and_disjoint(real_items):
    """Same seed: the same split; another seed: another one; and no listing is in both train and
    test even when the input holds duplicates (copies of the same listing are separate objects,
    so only a content check can tell)."""
    copies = [SimpleNamespace(**vars(i)) for i in real_items[:300]]
    items = real_items + copies  # 300 listings twice
    settings = balancing.BalanceSettings(train_size=1000, test_size=200, balance=False)
    train, test = balancing.split(items, settings)
    again = balancing.split(list(items), settings)
    assert len(train) == 1000 and len(test) == 200
    assert [i.text for i in again[0]] == [i.text for i in train]
    assert [i.text for i in again[1]] == [i.text for i in test]
    other = balancing.split(items, balancing.BalanceSettings(1000, 200, seed=7, balance=False))
    assert [i.text for i in other[1]] != [i.text for i in test]
    assert [i.text for i in other[0]] != [i.text for i in train]
    assert items[:300] == real_items[:300] and len(items) == len(real_items) + 300  # untouched
    # 1,200 of 6,300 items drawn: the input's duplicates do land in the split...
    chosen = [i.text for i in train + test]
    assert len(set(chosen)) < len(chosen)
    # ...but a duplicated listing never ends up on both sides
    assert not {i.text for i in train} & {i.text for i in test}


def test_cap_scales_with_the_requested_size():
    assert balancing.BalanceSettings().cap() == 1200
    assert balancing.BalanceSettings(train_size=25_000, test_size=2_000).cap() == 81
    assert balancing.BalanceSettings(bucket_cap=7).cap() == 7
    assert balancing.split_sizes(3, 400_000, 2_000) == (2, 1)
    assert balancing.split_sizes(1, 400_000, 2_000) == (1, 0)
    assert balancing.split_sizes(5000, 4000, 500) == (4000, 500)
