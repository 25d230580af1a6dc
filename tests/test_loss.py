"""The number-aware loss (train/loss.py, issue 20): `--loss ntl` adds Number Token Loss on the
price's digits to cross-entropy. With weight 0 it is today's loss and LoRA gradients (fast path
and plain SFTTrainer); a near-miss digit costs less than a far one; only the price's digits are
touched; `pricer train --loss ntl` records the loss in the run. Item weights (`--prices-like`,
`--balance-prices`) weigh each item's loss on the fast path."""

import json

import pytest
import torch
import yaml

from clirun import assert_bad_input, assert_ok, pricer
import trainsteps
from trainsteps import BF16_RELATIVE, FP32
from pricer.errors import PricerError
from pricer.train.config import load_config, resolve
from pricer.train.loss import PriceLoss, digit_token_ids



@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from pricer.models.load import load_tokenizer

    return load_tokenizer(str(tiny_llama))


def test_the_default_tokenizer_writes_a_price_one_digit_per_token(default_model_dir):
    from pricer.data.prompts import PRICE_PREFIX, completion
    from pricer.models.load import load_tokenizer

    tok = load_tokenizer("default")  # SmolLM2-135M-Instruct's tokenizer
    ids = digit_token_ids(tok)
    assert [tok.decode([i]) for i in ids] == list("0123456789")
    head = tok(PRICE_PREFIX, add_special_tokens=False)["input_ids"]
    price = tok(PRICE_PREFIX + completion(1234.0), add_special_tokens=False)["input_ids"]
    price = price[len(head):]
    assert [tok.decode([i]) for i in price] == ["1", "2", "3", "4", ".", "0", "0"]
    assert price[:4] == [ids[1], ids[2], ids[3], ids[4]] and price[-1] == ids[0]


def test_a_tokenizer_with_multi_digit_tokens_is_refused():
    class ThreeDigits:  # as Llama 3: numbers in tokens of up to three digits
        def __call__(self, text, add_special_tokens=False):
            words = text.split("$")
            pieces = [words[0], "$"] + ([words[1][i:i + 3] for i in range(0, len(words[1]), 3)]
                                        if len(words) > 1 else [])
            self.vocab = getattr(self, "vocab", {})
            return {"input_ids": [self.vocab.setdefault(p, len(self.vocab)) for p in pieces if p]}

        def decode(self, ids):
            return "".join(p for p, i in self.vocab.items() if i in ids)

    with pytest.raises(PricerError, match="one digit per token.*--loss ce"):
        digit_token_ids(ThreeDigits(), "llama-3")


def test_a_near_miss_digit_costs_less_than_a_far_one(tokenizer):
    """The true digit is 2: mass on 1 or 3 costs less than mass on 9; cross-entropy cannot tell
    them apart."""
    import torch.nn.functional as F

    ids = digit_token_ids(tokenizer)
    vocab = len(tokenizer)

    def confident(digit):  # almost all mass on one digit token
        logits = torch.zeros(vocab)
        logits[ids[digit]] = 20.0
        return logits

    logits = torch.stack([confident(d) for d in (2, 1, 3, 9)])
    truth = torch.full((4,), ids[2])
    ce = F.cross_entropy(logits, truth, reduction="none")
    assert ce[1] == ce[2] == ce[3]
    for kind in ("ntl", "ntl-mse"):
        loss = PriceLoss(kind, 1.0, ids)
        each = [loss.number_loss(logits[i:i + 1], truth[i:i + 1])[0].item() for i in range(4)]
        exact, below, above, far = each
        assert exact < 1e-6 < below and below == pytest.approx(above, rel=1e-4), (kind, each)
        assert far > 5 * below, (kind, each)  # |9 - 2| = 7 vs 1 (squared: 49 vs 1)
        # a spread near the truth costs less than the same spread far from it
        near = torch.zeros(1, vocab)
        near[0, [ids[1], ids[2], ids[3]]] = 10.0
        wide = torch.zeros(1, vocab)
        wide[0, [ids[0], ids[2], ids[9]]] = 10.0
        assert loss.number_loss(near, truth[:1])[0] < loss.number_loss(wide, truth[:1])[0]


def test_only_the_price_digits_are_touched(tiny_llama, train_file, tmp_path, tokenizer):
    """On a real collated batch whose prompts hold digits: the loss's gradient on the logits is
    zero at every prompt position, and the NTL term's is non-zero only where the next token is a
    digit of the price (not its '.', not EOS)."""
    from pricer.train.dataset import build_dataset, load_train_items
    from pricer.train.run import build_trainer

    config = resolve(load_config(None, dict(model=str(tiny_llama), data=str(train_file),
                                            out=str(tmp_path / "o"), report_to="none",
                                            max_length=96, batch_size=4)), "cpu")
    data = build_dataset(load_train_items(config.data), tokenizer, config.max_length)
    trainer = build_trainer(config, tokenizer, data.dataset, train_sampling_strategy="sequential")
    batch = next(iter(trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"], batch["labels"]
    digits = torch.tensor(digit_token_ids(tokenizer))
    is_digit = torch.isin(ids, digits)
    assert (is_digit & (labels == -100)).sum() > 10  # the prompts hold digits ("3.5 inch", ...)

    logits = torch.randn(*ids.shape, len(tokenizer), requires_grad=True)
    outputs = type("Out", (), {"logits": logits})()

    def grad_of(loss):
        logits.grad = None
        loss.backward()
        return logits.grad.abs().sum(-1)  # [batch, seq]

    full = grad_of(PriceLoss("ntl", 0.3, digits.tolist())(outputs, labels))
    ntl = grad_of(PriceLoss("ntl", 1.0, digits.tolist())(outputs, labels)
                  - PriceLoss("ntl", 0.0, digits.tolist())(outputs, labels))
    priced = torch.zeros_like(labels, dtype=torch.bool)  # position t predicts the label at t + 1
    priced[:, :-1] = labels[:, 1:] != -100
    price_digit = torch.zeros_like(priced)
    price_digit[:, :-1] = priced[:, :-1] & torch.isin(labels[:, 1:], digits)
    assert (full[~priced] == 0).all() and (full[priced] > 0).all()
    assert (ntl[~price_digit] < 1e-9).all() and (ntl[price_digit] > 0).all()
    assert price_digit.sum() >= 4 * 3  # every price has >= 1 digit, and ".00"


def run_steps(tiny_llama, data_file, out, *, fast_path: bool, loss: str, weight: float = 0.3,
              bf16: bool = False):
    """tests/trainsteps.py's 3 steps with `loss`. No dropout: with compute_loss_func, TRL 1.16
    runs a second (metrics) forward that draws other dropout masks for the later steps."""
    losses, grads, trainer = trainsteps.run_steps(
        tiny_llama, data_file, out, bf16=bf16, fast_path=fast_path, loss=loss,
        loss_weight=weight, lora_dropout=0.0)
    assert len(losses) == 6 and len(grads) == 3  # 3 steps x 2 micro-batches
    return losses, grads, trainer


def assert_same(a, b, bf16=False):
    (la, ga), (lb, gb) = a, b
    if bf16:  # see tests/test_fast_path.py: TRL's chunked head keeps an fp32 input gradient
        torch.testing.assert_close(torch.tensor(la[:2]), torch.tensor(lb[:2]), rtol=1e-5, atol=0)
        torch.testing.assert_close(torch.tensor(la), torch.tensor(lb), rtol=1e-3, atol=0)
    else:
        torch.testing.assert_close(torch.tensor(la), torch.tensor(lb), **FP32)
    for x, y in zip(ga, gb):
        assert x.keys() == y.keys() and any("lora_A" in n for n in x)
        for name in x:
            if bf16:
                error = (x[name] - y[name]).norm() / y[name].norm().clamp(min=1e-12)
                assert error < BF16_RELATIVE, (name, error.item())
            else:
                torch.testing.assert_close(x[name], y[name], **FP32, msg=name)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "plain"])
def test_weight_zero_is_todays_cross_entropy(fast_path, tiny_llama, train_file, tmp_path):
    """--loss ntl --loss-weight 0 = --loss ce: the same losses and LoRA gradients over three
    optimiser steps, on the fast path and on the plain SFTTrainer (compute_loss_func)."""
    ce = run_steps(tiny_llama, train_file, tmp_path / "ce", fast_path=fast_path, loss="ce")
    ntl = run_steps(tiny_llama, train_file, tmp_path / "ntl", fast_path=fast_path, loss="ntl",
                    weight=0.0)
    assert all(value > 0 for value in ce[0])
    assert_same(ntl[:2], ce[:2])
    assert all(g.abs().sum() > 0 for g in ce[1][-1].values())


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_ntl_is_the_same_on_the_fast_and_the_plain_path(bf16, tiny_llama, train_file, tmp_path):
    """With weight 0.3 the loss is higher than cross-entropy alone, and the fast path computes
    what the plain SFTTrainer does with it (fp32, and under bf16 autocast)."""
    ce = run_steps(tiny_llama, train_file, tmp_path / "ce", fast_path=True, loss="ce", bf16=bf16)
    fast = run_steps(tiny_llama, train_file, tmp_path / "f", fast_path=True, loss="ntl", bf16=bf16)
    plain = run_steps(tiny_llama, train_file, tmp_path / "p", fast_path=False, loss="ntl",
                      bf16=bf16)
    assert fast[0][0] > ce[0][0] + 1e-3  # the first micro-batch: same weights, NTL added
    assert_same(fast[:2], plain[:2], bf16=bf16)
    logged = fast[2].state.log_history[0]  # the NTL term is logged beside the loss
    assert logged["ntl"] > 0 and "mean_token_accuracy" in logged


def test_cli_train_with_ntl_records_the_loss(tiny_llama, train_file, tmp_path):
    out = tmp_path / "run"
    assert_ok(pricer("train", "--model", tiny_llama, "--data", train_file, "--out", out,
                     "--max-steps", "2", "--batch-size", "4", "--max-length", "96",
                     "--loss", "ntl", "--loss-weight", "0.5", "--report-to", "none", "--no-eval"))
    card = json.loads((out / "run_card.json").read_text())
    assert (card["config"]["loss"], card["config"]["loss_weight"]) == ("ntl", 0.5)
    assert card["steps"] == 2 and all(loss > 0 for loss in card["losses"])
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert (saved["loss"], saved["loss_weight"]) == ("ntl", 0.5)
    # a YAML config sets it too, and the default is cross-entropy
    config = tmp_path / "run.yaml"
    config.write_text("loss: ntl-mse\nloss_weight: 0.1\n")
    assert (load_config(config).loss, load_config(config).loss_weight) == ("ntl-mse", 0.1)
    assert load_config(None).loss == "ce"
    assert_bad_input(pricer("train", "--loss", "mse", "--print-config"), "loss must be one of")
    assert_bad_input(pricer("train", "--loss", "ntl", "--head", "regression", "--print-config"),
                     "--loss ntl")


def test_the_same_numbers_as_the_ntloss_package(tokenizer):
    """Where `ntloss` is installed (it is not in our set): our NTL is its NTLoss / NTLossDotProduct
    without reweighting, the paper's setting, summed."""
    ntloss = pytest.importorskip("ntloss")
    torch.manual_seed(0)
    ids = digit_token_ids(tokenizer)
    logits = torch.randn(1, 12, len(tokenizer))
    labels = torch.tensor([[ids[d] for d in (1, 9, 9)] + [-100, 5, 17]
                           + [ids[0]] * 3 + [ids[7]] * 3])
    rows, targets = logits[0, labels[0] != -100], labels[0, labels[0] != -100]
    ours = PriceLoss("ntl", 1.0, ids).number_loss(rows, targets)
    theirs = ntloss.NTLoss(tokenizer, reweigh=False)(logits, labels, reduction="sum")
    assert ours[1] == 9 and ours[0].item() == pytest.approx(theirs.item(), rel=1e-5)
    ours = PriceLoss("ntl-mse", 1.0, ids).number_loss(rows, targets)[0]
    theirs = ntloss.NTLossDotProduct(tokenizer, reweigh=False)(logits, labels, reduction="sum")
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_item_weights_weigh_each_items_loss_and_ones_change_nothing(tiny_llama, train_file, tmp_path):
    """The generation path with item weights (fast path, CE + NTL): weights of 1 (prices_like =
    the training file's own prices) give today's losses and gradients; weights of 2 double the
    first step's loss and gradients; uneven weights change the loss."""
    settings = dict(fast_path=True, loss="ntl", loss_weight=0.3, lora_dropout=0.0,
                    max_grad_norm=1e6)  # no clipping: it would hide the doubled gradients
    today = trainsteps.run_steps(tiny_llama, train_file, tmp_path / "a", **settings)
    ones = trainsteps.run_steps(tiny_llama, train_file, tmp_path / "b", prices_like=str(train_file),
                                **settings)
    assert ones[2].train_dataset["weight"] == pytest.approx([1.0] * 12)
    assert_same(ones[:2], today[:2])
    double = trainsteps.run_steps(tiny_llama, train_file, tmp_path / "c", **settings,
                                  weigh=lambda d: d.add_column("weight", [2.0] * len(d)))
    torch.testing.assert_close(torch.tensor(double[0][:2]), 2 * torch.tensor(today[0][:2]), **FP32)
    for name, grad in today[1][0].items():
        torch.testing.assert_close(double[1][0][name], 2 * grad, **FP32, msg=name)
    balanced = trainsteps.run_steps(tiny_llama, train_file, tmp_path / "d", balance_prices=True,
                                    **settings)
    assert len(set(balanced[2].train_dataset["weight"])) > 1
    assert abs(balanced[0][0] - today[0][0]) > 1e-4


def test_item_weights_need_the_fast_path(tiny_llama, train_file, tmp_path):
    out = tmp_path / "run"
    assert_ok(pricer("train", "--model", tiny_llama, "--data", train_file, "--out", out,
                     "--max-steps", "1", "--batch-size", "4", "--max-length", "96", "--loss", "ntl",
                     "--prices-like", train_file, "--report-to", "none", "--no-eval"))
    card = json.loads((out / "run_card.json").read_text())
    assert card["config"]["prices_like"] == str(train_file) and card["steps"] == 1
    assert_bad_input(pricer("train", "--model", tiny_llama, "--data", train_file, "--out",
                            tmp_path / "x", "--balance-prices", "--fast-path", "false", "--print-config"),
                     "on the fast path only")
    assert not (tmp_path / "x").exists()
