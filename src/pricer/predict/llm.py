"""Read a price out of a causal LM, three ways, all batched (price-is-right.md, section 6).

- `greedy`   the reference's `model_predict`: greedy generation after "Price is $", then the
             reference's regex (`extract.py`). Stops a batch as soon as every item has finished
             its number (the first non-number character after a digit, or end of text): the text
             the regex sees is then the same as after all `max_new_tokens`.
- `topk`     the reference's "improved" method: one forward pass, the top-3 next tokens that parse
             as a positive number, probability-weighted. Only meaningful when whole prices are
             single tokens (Llama 3); refused for digit-by-digit tokenizers (use `expected`).
- `expected` the probability-weighted mean over the model's whole distribution of number
             continuations, for any tokenizer: the number tree (digits, ".", decimals, end) is
             expanded level by level in one batched forward pass per level with the KV cache,
             keeping the `branches` most probable open prefixes per item. Also gives a 10-90 %
             interval and the probability mass the tree covered. Cents: `max_decimals` (default
             0: a "." ends the number, the price is its whole dollars, off by < $1).

Batching (hand-written, `generate` cannot stop on "number finished" nor expand a tree): prompts
are sorted by token length and cut into batches (little padding), left-padded, with explicit
position ids, the KV cache, and logits only for the last position of the prompt.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from pricer.data.prompts import DEFAULT_FORMAT, PRICE_PREFIX
from pricer.data.prompts import prompt_format as named_format
from pricer.errors import PricerError
from pricer.predict.base import Predictor
from pricer.predict.extract import extract_price
from pricer.predict.prompting import encode, prompt_limit, prompts_for

METHODS = ("greedy", "topk", "expected")
# "checked" precision: a bf16 greedy decision closer than this (top-1 minus top-2 log-prob) is
# recomputed in fp32. Chosen on train items, never the test split (docs/predict.md).
CHECK_MARGIN = 0.1
# Where more than the break-even share of a model's answers has a close decision, bf16 plus the
# fp32 recomputation costs more than fp32 alone, so checked answers the rest in fp32 directly:
# the same answers, the faster way. The break-even is measured as it runs (LLMPredictor.
# break_even); until then this one (bf16 at ~1.6x fp32 on an AVX512-BF16 EPYC: 1 - 1/1.6).
CHECK_BREAK_EVEN = 0.4
NUMBER_CHARS = set("0123456789.,$")  # characters that keep a number going under the regex rules


def is_digit_tokenizer(tokenizer) -> bool:
    """True when "999" takes more than one token (SmolLM2, Qwen, Gemma...), False for Llama 3."""
    return len(tokenizer("999", add_special_tokens=False)["input_ids"]) > 1


@dataclass
class TokenTables:
    """Per-token facts, computed once from the decoded vocabulary (tensors on the model's device)."""

    has_digit: "torch.Tensor"      # bool [V]: the token contains a digit
    pure_number: "torch.Tensor"    # bool [V]: only characters in NUMBER_CHARS (keeps a number going)
    ends_number: "torch.Tensor"    # bool [V]: a digit followed by a non-number character
    stop: "torch.Tensor"           # bool [V]: end-of-text tokens
    as_number: "torch.Tensor"      # float [V]: float(token) if it parses as a positive finite number, else nan
    piece_ids: "torch.Tensor"      # long [P]: the digit-string tokens, then the "." token (last)
    piece_value: "torch.Tensor"    # float64 [P]
    piece_len: "torch.Tensor"      # long [P]: digits in the piece (0 for ".")


def token_tables(tokenizer, device, vocab_size: int = 0) -> TokenTables:
    """`vocab_size`: the model's output size when larger than the tokenizer (padded embedding
    matrices): the extra ids are no text, so they count as "not a number"."""
    import torch

    strings = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    strings += ["\ufffd"] * max(0, vocab_size - len(strings))
    has_digit, pure, ends, numbers, pieces = [], [], [], [], []
    for i, s in enumerate(strings):
        first = next((k for k, c in enumerate(s) if c.isdigit()), None)
        has_digit.append(first is not None)
        pure.append(all(c in NUMBER_CHARS for c in s))
        ends.append(first is not None and any(c not in NUMBER_CHARS for c in s[first:]))
        try:
            value = float(s)  # the reference's rule: float(decoded token) > 0
        except ValueError:
            value = math.nan
        numbers.append(value if math.isfinite(value) and value > 0 else math.nan)
        if re.fullmatch(r"[0-9]+", s):
            pieces.append((i, int(s), len(s)))
    dots = [i for i, s in enumerate(strings) if s == "."]
    if not pieces or not dots:
        raise PricerError("this tokenizer has no plain digit or '.' tokens: `expected` cannot run")
    stop = torch.zeros(len(strings), dtype=torch.bool)
    stop_ids = {tokenizer.eos_token_id, *tokenizer.all_special_ids} - {None}
    stop[list(stop_ids)] = True
    return TokenTables(
        has_digit=torch.tensor(has_digit, device=device),
        pure_number=torch.tensor(pure, device=device),
        ends_number=torch.tensor(ends, device=device),
        stop=stop.to(device),
        as_number=torch.tensor(numbers, dtype=torch.float32, device=device),
        piece_ids=torch.tensor([p[0] for p in pieces] + [dots[0]], device=device),
        piece_value=torch.tensor([p[1] for p in pieces] + [0], dtype=torch.float64, device=device),
        piece_len=torch.tensor([p[2] for p in pieces] + [0], device=device),
    )


class LLMPredictor(Predictor):
    """A causal LM behind the predictor contract. Build it with `load_llm_predictor`."""

    def __init__(self, model, tokenizer, method: str = "greedy", batch_size: int = 16,
                 max_new_tokens: int | None = None, top_k: int = 3, branches: int = 8,
                 max_int_digits: int = 5, max_decimals: int = 0, min_prob: float = 1e-4,
                 prompt_format: str = DEFAULT_FORMAT, name: str | None = None,
                 info: dict | None = None, max_length: int | None = None,
                 exact_model=None, check_margin: float = CHECK_MARGIN):
        import torch

        if method not in METHODS:
            raise PricerError(f"unknown LLM method '{method}' (choose from {', '.join(METHODS)})")
        if batch_size < 1 or branches < 1 or max_int_digits < 1 or max_decimals < 0:
            raise PricerError("batch_size, branches and max_int_digits must be >= 1, max_decimals >= 0")
        self.model, self.tokenizer, self.method = model, tokenizer, method
        if exact_model is not None and method != "greedy":
            raise PricerError("only greedy decides by argmax: checked precision is for greedy")
        # "checked": `model` decides (bf16); a greedy answer whose closest decision is under
        # `check_margin` (top-1 minus top-2 log-prob) is recomputed on `exact_model` (fp32)
        self.exact_model, self.check_margin = exact_model, check_margin
        self._decisions = [0, 0]  # answers with a decision under the margin, answers seen
        self._seconds = {"fast": [0.0, 0], "exact": [0.0, 0]}  # seconds, items: per model
        self.prompt_format = named_format(prompt_format).name  # the adapter's training format
        self.digit_tokenizer = is_digit_tokenizer(tokenizer)
        if method == "topk" and self.digit_tokenizer:
            raise PricerError(
                "topk needs a tokenizer that writes whole prices as single tokens (like Llama 3); "
                "this one writes digits one by one, so use --predictor expected")
        # Reference: 4 new tokens (Llama 3: "123" ".00" in 2-3 tokens). One token per digit needs
        # 6 for "999.99"; 8 leaves room for a leading space or sign (and the early stop makes
        # the extra tokens free for items that finish their number).
        self.max_new_tokens = max_new_tokens or (8 if self.digit_tokenizer else 4)
        self.batch_size, self.top_k, self.branches = batch_size, top_k, branches
        self.max_int_digits, self.max_decimals, self.min_prob = max_int_digits, max_decimals, min_prob
        self.name = name or method
        self.info = info or {}
        self.device = next(model.parameters()).device
        config = getattr(model, "config", None)
        self.tables = token_tables(tokenizer, self.device, getattr(config, "vocab_size", 0) or 0)
        limit = getattr(config, "max_position_embeddings", None) or 4096
        self.max_prompt_tokens = prompt_limit(
            limit - (max_int_digits + max_decimals + 2 + self.max_new_tokens),
            {"max_length": max_length})  # the run's max_length: what it was trained on
        self._torch = torch

    def settings(self) -> dict:
        common = {"method": self.method, "batch_size": self.batch_size,
                  "prompt_format": self.prompt_format, **self.info}
        if self.method == "greedy":
            checked = {"check_margin": self.check_margin} if self.exact_model is not None else {}
            return common | {"max_new_tokens": self.max_new_tokens} | checked
        if self.method == "topk":
            return common | {"top_k": self.top_k}
        return common | {"branches": self.branches, "max_int_digits": self.max_int_digits,
                         "max_decimals": self.max_decimals, "min_prob": self.min_prob}

    # ---- the contract ----
    def predict(self, items) -> list[float | None]:
        return [d["price"] for d in self.predict_details(items)]

    def predict_details(self, items, progress=None) -> list[dict]:
        """One dict per item: `price` (None when no number), `reason` when None, `truncated`,
        the generated `text` (greedy) or `p10`/`p50`/`p90`/`mass` (expected).
        `progress(n)` is called after each batch with the number of items it finished."""
        ids, truncated = self.encode(items)
        if self.exact_model is None:
            return [r | {"truncated": cut} for r, cut in zip(self._batched(ids, progress), truncated)]
        if self.close_share() > self.break_even():  # fp32 alone is faster for this model
            results = self._timed("exact", ids, progress)
        else:  # checked: bf16 decides, the close decisions again in fp32
            results = self._timed("fast", ids, progress)
            close = [i for i, r in enumerate(results) if r["margin"] < self.check_margin]
            for i, result in zip(close, self._timed("exact", [ids[i] for i in close])):
                results[i] = result | {"checked": True}
        self._decisions[0] += sum(r["margin"] < self.check_margin for r in results)
        self._decisions[1] += len(results)
        return [r | {"truncated": cut} for r, cut in zip(results, truncated)]

    def close_share(self) -> float:
        """The share of answers so far with a decision under the check margin (0 before 32)."""
        close, seen = self._decisions
        return close / seen if seen >= 32 else 0.0

    def break_even(self) -> float:
        """The close share above which bf16 plus the fp32 recomputation costs more than fp32
        alone: 1 - (bf16 seconds per item) / (fp32 seconds per item), as measured here so far
        (CHECK_BREAK_EVEN until both have priced 16 items)."""
        (fast_s, fast_n), (exact_s, exact_n) = self._seconds["fast"], self._seconds["exact"]
        if fast_n < 16 or exact_n < 16:
            return CHECK_BREAK_EVEN
        return 1 - (fast_s / fast_n) / (exact_s / exact_n)

    def _timed(self, which: str, ids, progress=None) -> list[dict]:
        """_batched on the fast (bf16) or the exact (fp32) model, its seconds per item kept."""
        import time

        start = time.perf_counter()
        results = self._batched(ids, progress, self.model if which == "fast" else self.exact_model)
        spent = self._seconds[which]
        spent[0], spent[1] = spent[0] + time.perf_counter() - start, spent[1] + len(ids)
        return results

    def _batched(self, ids: list[list[int]], progress=None, model=None) -> list[dict]:
        """The method run on `ids` in batches of similar length (on `model`, else self.model),
        results in input order."""
        torch = self._torch
        if model is not None and model is not self.model:
            fast, self.model = self.model, model
            try:
                return self._batched(ids, progress)
            finally:
                self.model = fast
        run = {"greedy": self._greedy, "topk": self._topk, "expected": self._expected}[self.method]
        results: list[dict | None] = [None] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # longest first: OOM early
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                input_ids, mask = self._pad([ids[i] for i in batch])
                for i, result in zip(batch, run(input_ids, mask)):
                    results[i] = result
                if progress:
                    progress(len(batch))
        return results

    def formatted(self, items) -> list[str]:
        """The prompts the model reads for `items` (its prompt format)."""
        return prompts_for(items, self.prompt_format, self.tokenizer)

    def encode(self, items) -> tuple[list[list[int]], list[bool]]:
        """Token ids per item, and whether each was cut (pricer.predict.prompting)."""
        return encode(self.tokenizer, self.formatted(items), self.max_prompt_tokens)

    def _pad(self, rows):
        torch = self._torch
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):  # left padding: the last position is every prompt's "$"
            input_ids[k, width - len(r):] = torch.tensor(r)
            mask[k, width - len(r):] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _prefill(self, input_ids, mask):
        """Forward the prompts; returns (log-probs of the next token [B, V], cache, positions)."""
        torch = self._torch
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: positions start at 0 per row
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                         cache=cache, use_cache=True, logits_to_keep=1)
        logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        return logp, cache, positions[:, -1:]

    def _step(self, tokens, mask, positions, cache):
        torch = self._torch
        out = self.model(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions,
                         cache=cache, use_cache=True)
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1), cache

    # ---- greedy: the reference ----
    # Hand-written, not `model.generate`: generate cannot stop a batch once every item has
    # finished its number (the first non-number token), which is what makes greedy cheap here.
    def _greedy(self, input_ids, mask):
        torch, t = self._torch, self.tables
        logp, cache, positions = self._prefill(input_ids, mask)
        batch = input_ids.shape[0]
        started = torch.zeros(batch, dtype=torch.bool, device=self.device)
        done = torch.zeros_like(started)
        margin = torch.full((batch,), math.inf, device=self.device)
        generated = []
        for step in range(self.max_new_tokens):
            best = logp.topk(2, dim=-1).values  # the decision's margin: top-1 minus top-2 log-prob
            margin = torch.where(done, margin, torch.minimum(margin, best[:, 0] - best[:, 1]))
            token = logp.argmax(-1)
            generated.append(torch.where(done, -1, token))  # -1: after the item finished
            done = done | t.stop[token] | t.ends_number[token] | (started & ~t.pure_number[token])
            started = started | t.has_digit[token]
            if step == self.max_new_tokens - 1 or bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions + 1
            logp, cache = self._step(token, mask, positions, cache)
        rows = torch.stack(generated, dim=1).tolist()
        vocab = len(self.tokenizer)  # ids past the tokenizer (padded lm_head rows) are no text
        texts = self.tokenizer.batch_decode([[x for x in r if 0 <= x < vocab] for r in rows])
        results = []
        for text, m in zip(texts, margin.tolist()):
            price = extract_price(PRICE_PREFIX + text)  # as the reference: text after the prefix
            results.append({"price": price, "text": text, "margin": m} if price is not None else
                           {"price": None, "text": text, "margin": m,
                            "reason": f"no number in the output {text!r}"})
        return results

    # ---- topk: the reference's weighted top-3 ----
    def _topk(self, input_ids, mask):
        torch = self._torch
        logp, _, _ = self._prefill(input_ids, mask)
        probs, tokens = logp.exp().topk(self.top_k, dim=-1)
        values = self.tables.as_number[tokens]
        weights = torch.where(values.isnan(), 0.0, probs)
        total = weights.sum(-1)
        prices = (weights * values.nan_to_num()).sum(-1) / total.clamp(min=1e-30)
        return [{"price": p, "p_numbers": w} if w > 0 else
                {"price": None, "reason": f"none of the top {self.top_k} tokens is a number"}
                for p, w in zip(prices.tolist(), total.tolist())]

    # ---- expected: the number tree ----
    def _expected(self, input_ids, mask):
        """Expand the tree of number continuations level by level (one token more per level).

        Open prefixes ("rows") of all items are forwarded together; each row's next-token
        distribution gives (a) the probability that the number ends here (a leaf with this
        value) and (b) its children (digit pieces, "."). Per item, the `branches` most probable
        children above `min_prob` stay open; the rest of the mass is dropped and the leaves
        renormalised (`mass` says how much the tree covered). After `max_decimals` decimals
        the number counts as ended (further decimals move the price by < 10^-max_decimals);
        with max_decimals=0 a "." ends the number."""
        torch, t = self._torch, self.tables
        logp, cache, positions = self._prefill(input_ids, mask)
        batch, dev = input_ids.shape[0], self.device
        is_dot = torch.zeros(len(t.piece_ids), dtype=torch.bool, device=dev)
        is_dot[-1] = True
        item = torch.arange(batch, device=dev)        # row -> item
        slot = torch.zeros(batch, dtype=torch.long, device=dev)  # row -> index among its item's rows
        prob = torch.ones(batch, dtype=torch.float64, device=dev)
        value = torch.zeros(batch, dtype=torch.float64, device=dev)
        int_len = torch.zeros(batch, dtype=torch.long, device=dev)
        dec_len = torch.zeros(batch, dtype=torch.long, device=dev)
        in_dec = torch.zeros(batch, dtype=torch.bool, device=dev)
        leaf_item, leaf_value, leaf_prob = [], [], []
        root = True
        while True:
            p_piece = logp[:, t.piece_ids].double().exp()           # [R, P]
            p_digits = p_piece[:, ~is_dot].sum(-1)
            p_dot = p_piece[:, -1]
            if not root:
                end = 1 - p_digits - p_dot
                if self.max_decimals == 0:
                    end = end + p_dot                                # "." ends the number
                end = torch.where(in_dec, 1 - p_digits, end)
                end = torch.where(in_dec & (dec_len >= self.max_decimals), 1.0, end)
                leaf_item.append(item)
                leaf_value.append(value)
                leaf_prob.append(prob * end.clamp(min=0))
            # which children are allowed: digits while the integer / decimal part has room, one "."
            digit_ok = torch.where(in_dec[:, None],
                                   dec_len[:, None] + t.piece_len[None] <= self.max_decimals,
                                   int_len[:, None] + t.piece_len[None] <= self.max_int_digits)
            dot_ok = ~in_dec & (int_len > 0) & (self.max_decimals > 0)
            ok = torch.where(is_dot[None], dot_ok[:, None], digit_ok & ~is_dot[None])
            child = torch.where(ok, prob[:, None] * p_piece, 0.0)   # [R, P]
            if root:  # min_prob is relative to the item's probability of writing a number
                floor = child.sum(-1) * self.min_prob
            # per item: the `branches` most probable children of all its rows
            slots = int(slot.max()) + 1
            grid = torch.zeros(batch, slots, child.shape[1], dtype=torch.float64, device=dev)
            grid[item, slot] = child
            row_of = torch.full((batch, slots), -1, dtype=torch.long, device=dev)
            row_of[item, slot] = torch.arange(len(item), device=dev)
            k = min(self.branches, grid[0].numel())
            top_p, top_i = grid.flatten(1).topk(k, dim=-1)            # [B, k]
            keep = (top_p > floor[:, None]) & (top_p > 0)
            if not bool(keep.any()):
                break
            new_item, new_slot = keep.nonzero(as_tuple=True)
            flat = top_i[new_item, new_slot]
            parent = row_of[new_item, flat // child.shape[1]]
            piece = flat % child.shape[1]
            # the children's state
            plen, pval, dot = t.piece_len[piece], t.piece_value[piece], is_dot[piece]
            was_dec = in_dec[parent]
            value = torch.where(dot, value[parent], torch.where(
                was_dec, value[parent] + pval * torch.pow(10.0, -(dec_len[parent] + plen).double()),
                value[parent] * torch.pow(10.0, plen.double()) + pval))
            int_len = torch.where(was_dec | dot, int_len[parent], int_len[parent] + plen)
            dec_len = torch.where(was_dec, dec_len[parent] + plen, dec_len[parent])
            in_dec = was_dec | dot
            prob = top_p[new_item, new_slot]
            item, slot = new_item, new_slot
            # one batched forward for all open rows, on the parents' cache
            cache.batch_select_indices(parent)
            mask = torch.cat([mask[parent], torch.ones_like(mask[parent][:, :1])], dim=1)
            positions = positions[parent] + 1
            logp, cache = self._step(t.piece_ids[piece], mask, positions, cache)
            root = False
        return self._summarise(batch, leaf_item, leaf_value, leaf_prob)

    def _summarise(self, batch, leaf_item, leaf_value, leaf_prob):
        """Mean and 10/50/90 % quantiles of each item's leaves, all items at once."""
        torch = self._torch
        if not leaf_item:
            return [{"price": None, "reason": "the model gives no probability to a number"}] * batch
        item, value, prob = torch.cat(leaf_item), torch.cat(leaf_value), torch.cat(leaf_prob)
        mass = torch.zeros(batch, dtype=torch.float64, device=item.device).index_add_(0, item, prob)
        weighted = torch.zeros_like(mass).index_add_(0, item, prob * value)
        mean = weighted / mass.clamp(min=1e-300)
        # quantiles: sort leaves by (item, value), cumulative share within each item
        order = torch.argsort(value, stable=True)
        order = order[torch.argsort(item[order], stable=True)]
        item, value, prob = item[order], value[order], prob[order]
        share = prob / mass[item].clamp(min=1e-300)
        totals = torch.zeros_like(mass).index_add_(0, item, share)
        cum = share.cumsum(0) - (totals.cumsum(0) - totals)[item]  # running share within the item
        quantiles = {}
        for name, q in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9)):
            first = torch.where(cum >= q - 1e-12, torch.arange(len(cum), device=cum.device), len(cum))
            index = torch.full((batch,), len(cum), dtype=torch.long, device=cum.device)
            index = index.scatter_reduce(0, item, first, reduce="amin")
            quantiles[name] = value[index.clamp(max=len(cum) - 1)]
        results = []
        for b in range(batch):
            m = float(mass[b])
            if m <= 0:
                results.append({"price": None, "reason": "no number continuation within the bounds"})
                continue
            results.append({"price": float(mean[b]), "p10": float(quantiles["p10"][b]),
                            "p50": float(quantiles["p50"][b]), "p90": float(quantiles["p90"][b]),
                            "mass": m})
        return results


class _Quiet8bit(logging.Filter):
    """Drops bitsandbytes' "MatMul8bitLt: inputs will be cast ..." note, logged once per layer
    and forward pass (1,260 lines for one 8-bit prediction): expected, and nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("MatMul8bitLt: inputs will be cast")


def quiet_8bit() -> None:
    """Install the filter once on bitsandbytes' matmul logger (where 8-bit inference runs)."""
    log = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _Quiet8bit) for f in log.filters):
        log.addFilter(_Quiet8bit())


METHOD_OPTIONS = {"greedy": ("max_new_tokens",), "topk": ("top_k",),
                  "expected": ("branches", "max_int_digits", "max_decimals", "min_prob")}


def load_llm_predictor(method: str, model: str = "default", adapter: str | None = None,
                       precision: str = "auto", device: str | None = None, batch_size: int = 16,
                       merge: bool = False, quantize: str | None = None,
                       prompt_format: str | None = None, max_new_tokens: int | None = None,
                       top_k: int | None = None, branches: int | None = None,
                       max_int_digits: int | None = None, max_decimals: int | None = None,
                       min_prob: float | None = None, name: str | None = None) -> LLMPredictor:
    """A batched LLM predictor (`greedy`, `topk` or `expected`) on `model` (+ LoRA `adapter`).

    precision: as `pricer.models.precision.resolve_precision(..., "inference")` settles it
    ("auto": bf16 where the device computes it fast, fp16 on a GPU without bf16, else fp32).
    merge: fold the adapter into the weights (`merge_and_unload`), faster than running LoRA apart.
    quantize="int8": dynamic int8 quantisation of the decoder's Linear layers (CPU, fp32 model).
    Measured: faster than fp32, but it wrecks SmolLM2-135M's answers (docs/predict.md); off.
    prompt_format: the prompt format to send ("2024", "2025"); None: the adapter's own (its run's
    settings, `pricer.models.run.Run.prompt_format`), "2024" without one.
    The method's own options (METHOD_OPTIONS) go to `LLMPredictor`; another method's is refused."""
    import torch

    from pricer.models.load import bf16_twin, load_model, resolve_adapter
    from pricer.models.run import Run
    from pricer.models.precision import resolve_precision

    if method not in METHODS:
        raise PricerError(f"unknown LLM method '{method}' (choose from {', '.join(METHODS)})")
    options = {k: v for k, v in dict(max_new_tokens=max_new_tokens, top_k=top_k,
                                     branches=branches, max_int_digits=max_int_digits,
                                     max_decimals=max_decimals, min_prob=min_prob).items()
               if v is not None}
    wrong = [k for k in options if k not in METHOD_OPTIONS[method]]
    if wrong:
        owner = next(m for m, keys in METHOD_OPTIONS.items() if wrong[0] in keys)
        raise PricerError(f"{method}: option {wrong[0]} is for {owner} (options of {method}: "
                          f"{', '.join(METHOD_OPTIONS[method])})")
    folder = resolve_adapter(adapter) if adapter else None  # before the model loads: fails fast
    if folder is not None:
        Run(folder).refuse_head(method)
    trained = Run(folder).config() if folder else {}  # how the run was trained
    if prompt_format is None:
        prompt_format = trained.get("prompt_format") or DEFAULT_FORMAT
    prompt_format = named_format(prompt_format).name
    resolved = resolve_precision(precision, device, "inference", checkable=method == "greedy")
    device, precision = resolved.device, resolved.name
    if quantize not in (None, "int8"):
        raise PricerError(f"unknown quantize '{quantize}' (only int8)")
    if quantize and (device != "cpu" or precision != "fp32"):
        raise PricerError("quantize=int8 is dynamic CPU quantisation: use it with --precision fp32 on cpu")
    if quantize and adapter and not merge:
        raise PricerError("quantize=int8 needs the adapter merged: add --merge")
    if adapter and merge and resolved.quantized:
        raise PricerError("cannot merge an adapter into a 4/8-bit model; leave merge off")
    if precision == "8bit":
        quiet_8bit()
    loaded, tokenizer = load_model(model, adapter=adapter, precision=precision, device=device)
    if adapter and merge:
        loaded = loaded.merge_and_unload()
    exact = None
    if resolved.check:  # checked: the bf16 twin decides, the fp32 model settles close calls
        exact, loaded = loaded, bf16_twin(loaded)
    if quantize == "int8":
        # decoder layers only, per-channel weight scales: still not enough for SmolLM2 (its
        # activations, quantised per tensor, have outliers), so this stays an opt-in
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        loaded.model = quantize_dynamic(loaded.model, {torch.nn.Linear: per_channel_dynamic_qconfig},
                                        dtype=torch.qint8)
    info = {"model": model, "adapter": adapter, "precision": precision, "device": device,
            "merged": bool(adapter and merge), "quantize": quantize}
    return LLMPredictor(loaded, tokenizer, method=method, batch_size=batch_size,
                        prompt_format=prompt_format, max_length=trained.get("max_length"),
                        name=name or method, info=info, exact_model=exact, **options)
