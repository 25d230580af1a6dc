"""The one precision rule (models/precision.py) and everything that asks it: the weights, the
compute dtype (the 4-bit BitsAndBytesConfig), and training's mixed precision (the trainer's
flags, the run card), on a T4-like GPU (capability 7.5: bf16 only emulated), an A100-like GPU
(8.0: bf16) and a CPU with and without AVX512-BF16. No GPU needed: the device probes are faked
as torch answers them on such a machine."""

import pytest
import torch

from pricer.errors import PricerError

T4, A100, CPU_BF16, CPU = "t4", "a100", "cpu-avx512bf16", "cpu"


@pytest.fixture
def machine(monkeypatch):
    """machine(kind) -> the device the rule should pick there ("cuda" or "cpu")."""
    from pricer.models import precision

    def become(kind):
        gpu = kind in (T4, A100)
        capability = {T4: (7, 5), A100: (8, 0)}.get(kind, (0, 0))

        def is_bf16_supported(including_emulation=True):  # torch: natively from 8.0, else emulated
            return gpu and (capability >= (8, 0) or including_emulation)

        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
        monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: kind == CPU_BF16)
        return "cuda" if gpu else "cpu"

    return become


# (weights, compute, mixed) the rule settles for `auto`, per machine
INFERENCE = {T4: ("fp16", "fp16", None), A100: ("bf16", "bf16", None),
             CPU_BF16: ("bf16", "bf16", None), CPU: ("fp32", "fp32", None)}
TRAINING = {T4: ("4bit", "fp16", "fp16"), A100: ("4bit", "bf16", "bf16"),
            CPU_BF16: ("fp32", "fp32", "bf16"), CPU: ("fp32", "fp32", None)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@pytest.mark.parametrize("kind", [T4, A100, CPU_BF16, CPU])
def test_auto_follows_the_half_type_the_device_computes(machine, kind):
    from pricer.models.precision import resolve_precision

    device = machine(kind)
    for purpose, expected in (("inference", INFERENCE), ("training", TRAINING)):
        settled = resolve_precision("auto", purpose=purpose)
        assert settled.device == device
        assert (settled.name, settled.compute, settled.mixed) == expected[kind], purpose
        assert settled.dtype == DTYPES[expected[kind][1]]


@pytest.mark.parametrize("kind", [T4, A100, CPU_BF16, CPU])
def test_greedy_gets_checked_bf16_only_where_plain_bf16_would_change_cpu_answers(machine, kind):
    """A caller that decides by argmax (greedy: checkable) gets "checked" for auto on a CPU with
    fast bf16, and may name it anywhere; elsewhere "checked" means fp32, never a training
    precision."""
    from pricer.models.precision import resolve_precision

    machine(kind)
    settled = resolve_precision("auto", purpose="inference", checkable=True)
    if kind == CPU_BF16:
        assert (settled.name, settled.compute, settled.check) == ("checked", "bf16", "fp32")
    else:
        assert (settled.name, settled.check) == (INFERENCE[kind][0], None)
    assert resolve_precision("checked", checkable=True).check == "fp32"
    assert (resolve_precision("checked").name, resolve_precision("checked").check) == ("fp32", None)
    with pytest.raises(PricerError, match="greedy inference"):
        resolve_precision("checked", purpose="training")


@pytest.mark.parametrize("kind, compute", [(T4, "fp16"), (A100, "bf16"), (CPU_BF16, "bf16"),
                                           (CPU, "bf16")])
def test_4bit_computes_in_the_devices_half_type_and_bf16_on_any_cpu(machine, kind, compute,
                                                                    monkeypatch):
    """BitsAndBytesConfig's compute dtype (and, under FSDP, its storage dtype) comes from the rule."""
    from pricer.models import quant
    from pricer.models.precision import resolve_precision

    device = machine(kind)
    # the CUDA check would look for bitsandbytes' CUDA library, which a CPU machine lacks
    monkeypatch.setattr(quant, "bitsandbytes_problem", lambda device: None)
    for purpose in ("inference", "training"):
        assert resolve_precision("4bit", device, purpose).compute == compute
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    config = quant.quantization_config("4bit", device)
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_compute_dtype == DTYPES[compute]
    assert config.bnb_4bit_quant_storage == torch.uint8
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert quant.quantization_config("4bit", device).bnb_4bit_quant_storage == DTYPES[compute]


@pytest.mark.parametrize("kind", [T4, A100, CPU_BF16, CPU])
def test_trainer_gets_the_mixed_precision_the_rule_chose(machine, kind, tmp_path, monkeypatch):
    """The reference recipe resolved on each machine, to the trainer's flags: fp16 (so the Trainer
    scales the loss) on a T4, bf16 on an A100 and an AVX512-BF16 CPU, none on a plain CPU."""
    from pricer.train.config import TrainConfig, resolve
    from pricer.train.run import precision_args, sft_config

    device = machine(kind)
    weights, compute, mixed = TRAINING[kind]
    config = resolve(TrainConfig(out=str(tmp_path)), device)
    assert config.precision == weights and (config.bf16, config.fp16) == (mixed == "bf16", mixed == "fp16")
    assert precision_args(config) == {"bf16": mixed == "bf16", "fp16": mixed == "fp16",
                                      "use_cpu": device == "cpu"}
    # the real SFTConfig sets up its device when built: build it on this machine's real CPU
    monkeypatch.undo()
    args = sft_config(config)
    assert (args.bf16, args.fp16) == (mixed == "bf16", mixed == "fp16")
    assert args.mixed_precision == (mixed or "no")  # what accelerate is told


def test_a_t4_never_gets_emulated_bf16(machine):
    """torch says a T4 "supports" bf16 (emulated, slow); the rule asks for native support."""
    from pricer.models.precision import fast_bf16, half_type

    machine(T4)  # torch.cuda.is_bf16_supported() is True there by default
    assert not fast_bf16("cuda") and half_type("cuda") == "fp16"


def test_forced_choices_are_kept_and_contradictions_refused(machine):
    from pricer.models.precision import resolve_precision

    device = machine(T4)
    training = dict(device=device, purpose="training")
    assert resolve_precision("4bit", mixed_fp16=False, **training).mixed is None
    assert resolve_precision("4bit", mixed_bf16=False, **training).mixed == "fp16"
    assert resolve_precision("4bit", mixed_bf16=True, **training).mixed == "bf16"
    assert resolve_precision("bf16", **training).mixed == "bf16"  # bf16 weights: bf16 autocast
    assert resolve_precision("fp32", **training).mixed == "fp16"  # fp32 weights + fp16 AMP
    with pytest.raises(PricerError, match="choose one"):
        resolve_precision("4bit", mixed_bf16=True, mixed_fp16=True, **training)

    machine(A100)
    assert resolve_precision("fp16", "cuda", "training").mixed == "fp16"  # the weights' own
    assert resolve_precision("4bit", "cuda", "training", mixed_bf16=False).mixed is None

    machine(CPU)
    with pytest.raises(PricerError, match="fp16 mixed precision needs a GPU"):
        resolve_precision("fp32", "cpu", "training", mixed_fp16=True)
    with pytest.raises(PricerError, match="fp32, bf16, fp16, 8bit, 4bit"):
        resolve_precision("fp8", "cpu")


def test_a_config_cannot_ask_for_both_mixed_precisions(tmp_path):
    from pricer.train.config import load_config, resolve

    config = load_config(None, {"out": str(tmp_path), "bf16": "true", "fp16": "yes"})
    assert config.bf16 is True and config.fp16 is True
    with pytest.raises(PricerError, match="bf16 and fp16 mixed precision: choose one"):
        resolve(config, "cpu")


def test_run_card_says_how_the_run_computed(machine, tmp_path):
    from pricer.models.precision import resolve_precision
    from pricer.models.run import Run, precision_fields

    card = {"base_model": "m", "data": "d", "data_fingerprint": "f", "items": 8, "truncated": 0,
            "skipped": 0, "steps": 2, "epochs": 1.0, "train_seconds": 3.0, "tokens_per_s": 9.0,
            "final_loss": 1.5, "device": "cuda", "processes": 1}
    rows = {}
    for kind in (T4, A100, CPU):
        machine(kind)
        out = tmp_path / kind
        out.mkdir()
        Run(out).write_card(card | precision_fields(resolve_precision("auto", None, "training")))
        assert Run(out).card()["mixed_precision"] == (TRAINING[kind][2] or "no")
        rows[kind] = next(line for line in (out / "run_card.md").read_text().splitlines()
                          if line.startswith("| precision |"))
    assert rows[T4] == "| precision | 4bit weights, fp16 compute, mixed precision fp16 (loss scaling) |"
    assert rows[A100] == "| precision | 4bit weights, bf16 compute, mixed precision bf16 |"
    assert rows[CPU] == "| precision | fp32 weights, fp32 compute, no mixed precision |"


def test_fp16_weights_load_and_are_read_back(tiny_llama):
    from pricer.models.load import load_base
    from pricer.models.precision import precision_of

    model = load_base(str(tiny_llama), "fp16", "cpu")
    assert model.dtype == torch.float16 and precision_of(model) == "fp16"
    logits = model(torch.tensor([[1, 2, 3]])).logits
    assert logits.dtype == torch.float16 and torch.isfinite(logits).all()


def test_a_training_run_records_its_precision(tiny_llama, tmp_path):
    """A real 1-step run on this CPU: the run card and train_config.yaml say what the rule chose."""
    import yaml

    from conftest import AMAZON_TRAIN
    from pricer.models.precision import resolve_precision
    from pricer.train.config import load_config
    from pricer.train.run import train
    from pricer.models.run import Run

    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:8]) + "\n")
    out = train(load_config(None, dict(model=str(tiny_llama), data=str(data), out=str(tmp_path / "run"),
                                       max_steps=1, batch_size=4, report_to="none", eval=False,
                                       max_length=64)))
    rule = resolve_precision("auto", "cpu", "training")
    card = Run(out).card()
    assert (card["precision"], card["compute_dtype"], card["mixed_precision"]) == \
        (rule.name, rule.compute, rule.mixed or "no")
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert (saved["bf16"], saved["fp16"]) == (rule.mixed == "bf16", False)
    assert f"| precision | {rule.name} weights, {rule.compute} compute, " in (out / "run_card.md").read_text()
