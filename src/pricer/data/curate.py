"""Item curation exactly as the reference (price-is-right.md, section 1), one record at a time.

    record --price--> float in [0.5, 999.49] --text--> title + description + features + details
           --scrub--> "title\\ncontents" --tokens--> > 150 tokens, cut to 160 --> Curated item

Every record that does not make it gets one drop reason (the names are a contract):
bad_encoding, bad_json, bad_row (a CSV row that cannot be read or has the wrong number of fields),
no_price, bad_price (NaN and infinity too), price_out_of_range, missing_text, bad_field, too_short,
too_few_tokens. All numbers are `Settings` with the reference values as defaults.

Work per record is bounded: title and contents are each cut to `max_chars` characters before
they are scrubbed and tokenised, so a 5 MB description costs no more than a normal one.
"""

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace

from pricer.data.prompts import DEFAULT_FORMAT

DROP_REASONS = ("bad_encoding", "bad_json", "bad_row", "no_price", "bad_price",
                "price_out_of_range", "missing_text", "bad_field", "too_short", "too_few_tokens")

# Strings the reference removes from the details (a JSON object written as text).
REMOVALS = ('"Batteries Included?": "No"', '"Batteries Included?": "Yes"',
            '"Batteries Required?": "No"', '"Batteries Required?": "Yes"',
            "By Manufacturer", "Item", "Date First", "Package", ":", "Number of",
            "Best Sellers", "Number", "Product ")


@dataclass
class Settings:
    """The curation knobs; defaults are the reference's numbers."""
    min_price: float = 0.5
    max_price: float = 999.49
    min_chars: int = 300            # contents must be longer than this
    max_chars: int = 160 * 7        # contents are cut to this many characters first
    min_tokens: int = 150           # text must have more tokens than this
    max_tokens: int = 160           # text is cut to this many tokens
    prompt_format: str = DEFAULT_FORMAT  # the saved prompts' format (pricer.data.prompts.FORMATS)
    lenient_price: bool = False     # reference: float(price); True: "$1,299.99" -> 1299.99
    removals: tuple[str, ...] = field(default=REMOVALS)

    def to_dict(self) -> dict:
        return asdict(self) | {"removals": list(self.removals)}


REFERENCE = Settings()
# User files: same rules, but "$1,299.99" is read as the amount users mean.
USER = replace(REFERENCE, lenient_price=True)


class Drop(Exception):
    """A record that does not become an item; `reason` is one of DROP_REASONS."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---- price -------------------------------------------------------------------------------------

# One amount, optional currency sign or code, optional thousands commas: "$1,299.99", "12.99 USD".
_AMOUNT = re.compile(r"(?:US\s*)?\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(?:USD)?",
                     re.IGNORECASE)
_NO_PRICE = {"", "none", "null", "n/a", "na"}


def parse_price(value, lenient: bool = False) -> float:
    """The price of a record, or raise Drop(no_price | bad_price).

    strict (reference): `float(value)`. lenient (user files): also a single amount written with a
    currency sign/code and thousands commas. Anything else, e.g. "from 12.99" or "10-20", is
    ambiguous and therefore bad_price, never a guess.
    """
    if value is None:
        raise Drop("no_price")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Drop("bad_price")
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NO_PRICE:
            raise Drop("no_price")
        try:
            price = float(text)
        except ValueError:
            match = _AMOUNT.fullmatch(text) if lenient else None
            if not match:
                raise Drop("bad_price") from None
            price = float(match.group(1).replace(",", "") + (match.group(2) or ""))
    else:
        price = float(value)
    if not math.isfinite(price):
        raise Drop("bad_price")
    return price


def check_price(value, settings: Settings) -> float:
    price = parse_price(value, settings.lenient_price)
    if not settings.min_price <= price <= settings.max_price:
        raise Drop("price_out_of_range")
    return price


# ---- text --------------------------------------------------------------------------------------

def scrub(text: str) -> str:
    """The reference's scrub: collapse punctuation/whitespace runs, tidy commas, drop part numbers
    (words of 7+ characters containing a digit)."""
    text = re.sub(r'[:\[\]"{}【】\s]+', " ", text).strip()
    text = text.replace(" ,", ",").replace(",,,", ",").replace(",,", ",")
    words = text.split(" ")
    return " ".join(w for w in words if len(w) < 7 or not any(c.isdigit() for c in w))


def scrub_details(details: str, removals=REMOVALS) -> str:
    for remove in removals:
        details = details.replace(remove, "")
    return details


def text_field(value) -> str:
    """A text field: a string, a list of strings joined by spaces, or missing (""); else Drop."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    raise Drop("bad_field")


def _lines(value) -> list[str]:
    """A list-of-lines field (description, features); a lone string counts as one line."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise Drop("bad_field")


def _details(value) -> str:
    """Details as the HF loader gives them: a JSON string. Raw files hold an object: dump it the
    same way (json.dumps defaults), so both conventions give the same text ({} too: "{}")."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value)
    raise Drop("bad_field")


def contents_of(description: list[str], features: list[str], details: str,
                removals=REMOVALS) -> str:
    """description lines + feature lines + scrubbed details, one per line, as the reference."""
    contents = "\n".join(description)
    if contents:
        contents += "\n"
    text = "\n".join(features)
    if text:
        contents += text + "\n"
    if details:
        contents += scrub_details(details, removals) + "\n"
    return contents


def draft_text(title: str, contents: str, settings: Settings) -> str:
    """Character rules and scrub: the text before the token rule (raise Drop on too_short)."""
    if not title.strip():
        raise Drop("missing_text")
    if len(contents) <= settings.min_chars:
        raise Drop("too_short")
    # The reference cuts the contents only; a title is cut too, at the same bound, so nothing
    # unbounded reaches scrub and the tokenizer (160 tokens never need 1,120 characters).
    return f"{scrub(title[: settings.max_chars])}\n{scrub(contents[: settings.max_chars])}"


def amazon_draft(record, settings: Settings) -> tuple[str, float, str | None]:
    """(draft text, price, category) of one raw Amazon Reviews 2023 record (either convention)."""
    if not isinstance(record, dict):
        raise Drop("bad_json")
    price = check_price(record.get("price"), settings)
    title = text_field(record.get("title"))
    contents = contents_of(_lines(record.get("description")), _lines(record.get("features")),
                           _details(record.get("details")), settings.removals)
    category = record.get("main_category")
    category = category if isinstance(category, str) else None
    return draft_text(title, contents, settings), price, category


def user_draft(text: str, settings: Settings) -> str:
    """A user's listing: first line is the title, the rest the contents (several text columns are
    joined with newlines before, so the first column is the title)."""
    title, _, contents = text.strip().partition("\n")
    return draft_text(title, contents + "\n" if contents else "", settings)


# ---- tokens ------------------------------------------------------------------------------------

def token_rule(drafts: list[str], tokenizer, settings: Settings) -> list[tuple[str, int] | None]:
    """The reference's token rule, batched: keep a text with more than `min_tokens` tokens, cut it
    to `max_tokens` and decode. Returns (text, n_tokens) or None (too_few_tokens) per draft."""
    if not drafts:
        return []
    # The Rust tokenizer under a fast tokenizer gives the same ids ~30% faster than the wrapper.
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", False):
        needed = max(settings.max_tokens, settings.min_tokens + 1)
        if splits_at_spaces(backend):
            ids = head_ids(drafts, backend, needed)
        else:
            ids = [e.ids for e in backend.encode_batch(drafts, add_special_tokens=False)]
        decode = lambda seqs: backend.decode_batch(seqs, skip_special_tokens=False)  # noqa: E731
    else:
        ids = tokenizer(drafts, add_special_tokens=False)["input_ids"]
        decode = tokenizer.batch_decode
    keep = [i for i, t in enumerate(ids) if len(t) > settings.min_tokens]
    cut = [ids[i][: settings.max_tokens] for i in keep]
    texts = decode(cut) if cut else []
    out: list[tuple[str, int] | None] = [None] * len(drafts)
    for i, text, tokens in zip(keep, texts, cut):
        out[i] = (text, len(tokens))
    return out


# ---- the first tokens only ---------------------------------------------------------------------
# The token rule needs only a text's first `needed` tokens (161), but a draft has ~260, and the
# tokenizer is ~75 % of curation's time. For a byte-level BPE whose pre-tokenizer is GPT-2's
# regex (SmolLM2's, GPT-2's), a text cut just before a space that follows a non-space character
# is cut between two pre-tokens (no pre-token spans such a place, the regex has no look-behind,
# and BPE merges within a pre-token), so ids(text) == ids(head) + ids(rest): the text can be
# encoded a piece at a time until `needed` tokens are there. tokenizers has no "first n tokens"
# call of its own; tests/test_data_curate.py checks the ids against whole-text encoding.

_SPLITS: dict = {}   # id(backend) -> (backend, bool): the backend kept, so its id is not reused


def splits_at_spaces(backend) -> bool:
    """Whether ids(text) == ids(head) + ids(rest) for a cut before a space after a non-space:
    no normalizer, a ByteLevel pre-tokenizer with GPT-2's regex and no prefix space (optionally
    after Digits), and no added token that holds or strips spaces."""
    key = id(backend)
    if _SPLITS.get(key, (None,))[0] is not backend:
        import json

        spec = json.loads(backend.to_str())
        pre = spec.get("pre_tokenizer") or {}
        steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
        kinds = [step.get("type") for step in steps]
        byte_level = steps[-1] if kinds and kinds[-1] == "ByteLevel" else {}
        _SPLITS[key] = (backend, (
            spec.get("normalizer") is None
            and set(kinds[:-1]) <= {"Digits"}
            and byte_level.get("use_regex") is True and byte_level.get("add_prefix_space") is False
            and (spec.get("model") or {}).get("type") == "BPE"
            and not any(t.get("lstrip") or t.get("rstrip") or any(c.isspace() for c in t["content"])
                        for t in spec.get("added_tokens") or [])))
    return _SPLITS[key][1]


def head_ids(texts: list[str], backend, needed: int, chars_per_token: int = 4) -> list[list[int]]:
    """The ids of each text, or at least their first `needed` (a prefix of the whole text's ids;
    a text with fewer has all its ids): pieces are encoded, batched, until there are enough."""
    ids: list[list[int]] = [[] for _ in texts]
    done = [0] * len(texts)                      # characters encoded so far
    todo = list(range(len(texts)))
    while todo:
        pieces = []
        for i in todo:
            text, start = texts[i], done[i]
            end = _space_before(text, start, start + chars_per_token * (needed - len(ids[i])) + 16)
            pieces.append(text[start:end])
            done[i] = end
        for i, encoding in zip(todo, backend.encode_batch_fast(pieces, add_special_tokens=False)):
            ids[i] += encoding.ids
        todo = [i for i in todo if len(ids[i]) < needed and done[i] < len(texts[i])]
    return ids


def _space_before(text: str, start: int, end: int) -> int:
    """A cut after `start`, at or before `end` if the text has one there (else the first after
    it, else the text's end): just before a space that follows a non-space character."""
    if end >= len(text):
        return len(text)
    at = text.rfind(" ", start + 1, end + 1)
    while at > start + 1 and text[at - 1].isspace():
        at = text.rfind(" ", start + 1, at)
    if at > start + 1 or (at == start + 1 and not text[start].isspace()):
        return at
    at = text.find(" ", end + 1)
    while at != -1 and text[at - 1].isspace():
        at = text.find(" ", at + 1)
    return len(text) if at == -1 else at
