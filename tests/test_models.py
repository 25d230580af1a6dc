"""Models (issue 4): loading at each precision, adapters, the 4-bit CPU trap, inspect, memory,
download, and the one-line errors. Fast tests use the tiny random Llama; `slow` ones the real
default model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pricer.errors import PricerError
from pricer.models.load import attach_adapter, detach_adapter, load_base, load_model

from conftest import LLAMA_8B_CONFIG, ROOT


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `pricer ARGS` in this process through the real entry point: (exit code, stdout, stderr)."""
    from pricer.cli import main

    capsys.readouterr()
    old = sys.argv
    sys.argv = ["pricer", *args]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(capsys, *args: str, says: str) -> None:
    code, _, err = run_cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err and says in lines[0], err


def lora_config(targets=("q_proj", "v_proj")):
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), task_type="CAUSAL_LM")


def make_adapter(base_dir, out_dir) -> Path:
    """A LoRA adapter for `base_dir` with non-zero B, so that it changes the output."""
    from peft import get_peft_model

    torch.manual_seed(1)
    model = get_peft_model(load_base(str(base_dir), "fp32"), lora_config())
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    model.save_pretrained(out_dir)
    return Path(out_dir)


def lora_grads(model) -> tuple[int, int]:
    """(LoRA tensors that got a non-zero gradient, all LoRA tensors) after one training step."""
    from peft import get_peft_model

    peft = get_peft_model(model, lora_config())
    for name, p in peft.named_parameters():
        if "lora_B" in name:  # B starts at zero, which would hide A's gradient
            torch.nn.init.normal_(p, std=0.1)
    peft.train()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    peft(input_ids=ids, labels=ids).loss.backward()
    grads = [p.grad is not None and p.grad.abs().sum().item() > 0
             for p in peft.parameters() if p.requires_grad]
    return sum(grads), len(grads)


# --- loading ---------------------------------------------------------------------------------

def test_every_precision_loads_and_footprints_shrink(tiny_llama):
    """fp32, bf16, 8-bit and 4-bit all load and run on this CPU; footprint 4bit < 8bit < bf16 <
    fp32, and equals the estimate computed from shapes alone."""
    from bitsandbytes.nn import Linear4bit, Linear8bitLt

    from pricer.models.arch import read_config
    from pricer.models.memory import estimate_bytes

    config = read_config(config=tiny_llama)
    ids = torch.tensor([[1, 2, 3, 4]])
    expected_layer = {"fp32": torch.nn.Linear, "bf16": torch.nn.Linear, "8bit": Linear8bitLt, "4bit": Linear4bit}
    sizes, logits = {}, {}
    for precision, layer in expected_layer.items():
        model, tokenizer = load_model(str(tiny_llama), precision=precision)
        assert isinstance(model.model.layers[0].self_attn.q_proj, layer)
        assert not model.training and tokenizer.pad_token is not None
        sizes[precision] = model.get_memory_footprint()
        assert sizes[precision] == estimate_bytes(config, precision)
        with torch.no_grad():
            logits[precision] = model(ids).logits.float()
        assert torch.isfinite(logits[precision]).all()
    assert sizes["4bit"] < sizes["8bit"] < sizes["bf16"] < sizes["fp32"]
    assert sizes["fp32"] > 1.99 * sizes["bf16"]  # 4 vs 2 bytes a weight (buffers stay fp32)
    # quantisation perturbs the random model a little, not completely
    for precision in ("bf16", "8bit", "4bit"):
        assert torch.nn.functional.cosine_similarity(
            logits[precision].flatten(), logits["fp32"].flatten(), dim=0) > 0.9


def test_4bit_training_gets_lora_gradients_after_inference(tiny_llama):
    """The AVX512-BF16 trap: inference on a 4-bit model repacks its weights on such CPUs and LoRA
    then gets no gradients. for_training=True prevents it; keep_trainable_4bit undoes it."""
    from bitsandbytes.functional import has_avx512bf16
    from bitsandbytes.nn import Linear4bit

    from pricer.models.quant import keep_trainable_4bit

    def predict_once(model):
        model.eval()
        with torch.no_grad():
            model(torch.tensor([[1, 2, 3]]))

    fresh, _ = load_model(str(tiny_llama), precision="4bit", for_training=True)
    predict_once(fresh)  # e.g. an evaluation during training
    got, total = lora_grads(fresh)
    assert total == 8 and got == total

    used, _ = load_model(str(tiny_llama), precision="4bit")  # an inference model
    predict_once(used)
    layers = [m for m in used.modules() if isinstance(m, Linear4bit)]
    packed = sum(bool(getattr(m.weight.quant_state, "packing_format_for_cpu", False)) for m in layers)
    assert packed == (len(layers) if has_avx512bf16() else 0)
    assert keep_trainable_4bit(used) == packed
    got, total = lora_grads(used)
    assert got == total


def test_adapter_attach_and_detach(tiny_llama, tmp_path):
    adapter = make_adapter(tiny_llama, tmp_path / "adapter")
    ids = torch.tensor([[5, 6, 7, 8]])
    base, _ = load_model(str(tiny_llama), precision="fp32")
    with torch.no_grad():
        plain = base(ids).logits
    model, _ = load_model(str(tiny_llama), adapter=str(adapter), precision="fp32")
    assert type(model).__name__ == "PeftModelForCausalLM"
    with torch.no_grad():
        tuned = model(ids).logits
    assert not torch.allclose(plain, tuned, atol=1e-4)
    back = detach_adapter(model)
    assert not any("lora" in name for name, _ in back.named_parameters())
    with torch.no_grad():
        assert torch.allclose(back(ids).logits, plain, atol=1e-5)
    # merged: the adapter folded into the weights gives the adapter's outputs without LoRA layers
    merged = detach_adapter(attach_adapter(load_base(str(tiny_llama), "fp32"), str(adapter)), merge=True)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, tuned, atol=1e-4)
    # for training, the adapter's weights are trainable
    train, _ = load_model(str(tiny_llama), adapter=str(adapter), precision="fp32", for_training=True)
    assert train.training and sum(p.numel() for p in train.parameters() if p.requires_grad) > 0


def test_pickle_checkpoints_need_allow_pickle(tiny_llama, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    for f in tiny_llama.iterdir():
        if f.suffix != ".safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    torch.save(load_base(str(tiny_llama), "fp32").state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(PricerError, match="allow-pickle"):
        load_model(str(folder))
    model, _ = load_model(str(folder), allow_pickle=True, precision="fp32")
    original = load_base(str(tiny_llama), "fp32")
    assert torch.equal(model.model.layers[1].mlp.down_proj.weight, original.model.layers[1].mlp.down_proj.weight)


# --- inspect and memory (config only) ------------------------------------------------------------

def hand_lora(layers, hidden, heads, kv_heads, head_dim, r, inter=None, targets=("q", "k", "v", "o")):
    """LoRA parameters computed by hand: each target adds r * (in + out)."""
    shapes = {"q": (hidden, heads * head_dim), "k": (hidden, kv_heads * head_dim),
              "v": (hidden, kv_heads * head_dim), "o": (heads * head_dim, hidden),
              "gate": (hidden, inter), "up": (hidden, inter), "down": (inter, hidden)}
    return layers * sum(r * (shapes[t][0] + shapes[t][1]) for t in targets)


def test_inspect_llama_8b_config_matches_the_reference(capsys):
    code, out, _ = run_cli(capsys, "model", "inspect", "--model-config", str(LLAMA_8B_CONFIG), "--r", "32",
                           "--targets", "q_proj,k_proj,v_proj,o_proj", "--json")
    assert code == 0
    rep = json.loads(out)
    expected = hand_lora(32, 4096, 32, 8, 128, 32)
    assert rep["lora_params"] == expected == 27_262_976
    assert rep["lora_mb_fp32"] == round(expected * 4 / 1e6, 1) == 109.1
    assert rep["lora_params_peft"] == expected and rep["cross_check_ok"]
    k = next(m for m in rep["modules"] if m["name"] == "k_proj")
    assert (k["in"], k["out"], k["A"], k["B"]) == (4096, 1024, [32, 4096], [1024, 32])
    # the file itself works as well as its folder
    code, out, _ = run_cli(capsys, "model", "inspect", "--model-config", str(LLAMA_8B_CONFIG / "config.json"), "--json")
    assert json.loads(out)["lora_params"] == expected


def test_memory_estimate_reproduces_the_reference_8b_footprints(capsys):
    code, out, _ = run_cli(capsys, "model", "memory", "--model-config", str(LLAMA_8B_CONFIG), "--r", "32", "--json")
    assert code == 0
    rows = {row["precision"]: row for row in json.loads(out)["rows"]}
    gb = {p: round(row["bytes"] / 1e9, 2) for p, row in rows.items()}
    # the reference measured 32.1 (fp32), 16.06 (bf16), 9.08 (8-bit), 5.59 (4-bit), 5.70 (+adapter)
    assert (round(gb["fp32"], 1), gb["bf16"], gb["8bit"], gb["4bit"]) == (32.1, 16.06, 9.08, 5.59)
    assert round(rows["4bit"]["with_adapter_bytes"] / 1e9, 2) == 5.70
    assert all(row["estimate"] for row in rows.values())


def test_inspect_default_model_matches_hand_computed_smollm2(capsys, default_model_dir):
    L, H, NH, NKV, HD, I, V = 30, 576, 9, 3, 64, 1536, 49152
    code, out, _ = run_cli(capsys, "model", "inspect", "--model", "default", "--r", "16", "--alpha", "32",
                           "--targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "--json", "--explain")
    assert code == 0
    rep = json.loads(out)
    lora = hand_lora(L, H, NH, NKV, HD, 16, I, ("q", "k", "v", "o", "gate", "up", "down"))
    assert rep["lora_params"] == lora == rep["lora_params_peft"]
    assert rep["lora_mb_fp32"] == round(lora * 4 / 1e6, 1)
    per_layer_base = H * H * 2 + H * NKV * HD * 2 + 3 * H * I + 2 * H
    base = V * H + L * per_layer_base + H  # tied embeddings: no separate lm_head
    assert rep["base_params"] == base == rep["base_params_meta"]
    assert rep["trainable_fraction"] == pytest.approx(lora / base)
    assert (rep["layers"], rep["hidden_size"], rep["heads"], rep["kv_heads"], rep["head_dim"]) == (L, H, NH, NKV, HD)
    # the explanation is built around the real numbers
    assert "576 -> 3 heads x 64 = 192" in rep["explain"] and "3x smaller" in rep["explain"]
    assert "alpha/r = 2" in rep["explain"]
    code, out, _ = run_cli(capsys, "model", "inspect", "--model", "default", "--explain")
    assert code == 0 and "q_proj" in out and "3,686,400" in out and "LoRA keeps every weight" in out


# --- errors: one line, exit code 2 ----------------------------------------------------------

def test_bad_input_is_one_line_exit_2(capsys, tiny_llama, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(capsys, "model", "memory", "--model", str(empty), says="no config.json")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_llama / "config.json").read_text())
    assert_one_line_error(capsys, "model", "memory", "--model", str(no_weights), says="no weights")
    assert_one_line_error(capsys, "model", "memory", "--model", str(tmp_path / "missing"), says="no such model folder")
    assert_one_line_error(capsys, "model", "memory", "--model", str(tiny_llama), "--precisions", "fp16", says="unknown precision")
    assert_one_line_error(capsys, "model", "inspect", "--model-config", str(tiny_llama), "--targets", "qkv", says="unknown LoRA target")
    assert_one_line_error(capsys, "model", "memory", "--model", str(tiny_llama), "--device", "cuda", says="not available")
    assert_one_line_error(capsys, "model", "inspect", "--model-config", str(empty), says="no such config")

    remote = tmp_path / "remote-code"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({"model_type": "acme", "auto_map": {
        "AutoConfig": "configuration_acme.AcmeConfig", "AutoModelForCausalLM": "modeling_acme.AcmeModel"}}))
    (remote / "model.safetensors").write_bytes(b"")
    assert_one_line_error(capsys, "model", "inspect", "--model", str(remote), says="--trust-remote-code")
    assert_one_line_error(capsys, "model", "memory", "--model", str(remote), says="--trust-remote-code")


def test_adapter_for_another_base_is_refused(capsys, tiny_llama, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = tmp_path / "other-base"
    config = json.loads((tiny_llama / "config.json").read_text())
    LlamaForCausalLM(LlamaConfig(**config | {"hidden_size": 32})).save_pretrained(other)
    adapter = make_adapter(tiny_llama, tmp_path / "adapter")
    assert_one_line_error(capsys, "model", "memory", "--model", str(other), "--precisions", "fp32",
                          "--adapter", str(adapter), says="does not fit this base model")
    (adapter / "adapter_model.safetensors").rename(adapter / "adapter_model.bin")
    assert_one_line_error(capsys, "model", "memory", "--model", str(tiny_llama), "--precisions", "fp32",
                          "--adapter", str(adapter), says="--allow-pickle")


def test_quantised_modes_explain_when_bitsandbytes_cannot_run(capsys, tiny_llama, monkeypatch):
    from pricer.models.quant import bitsandbytes_problem

    assert bitsandbytes_problem("cpu") is None  # both 8-bit and 4-bit run on this CPU
    assert "no 8-bit/4-bit kernels" in bitsandbytes_problem("mps")
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if it were not installed
    assert_one_line_error(capsys, "model", "memory", "--model", str(tiny_llama), "--precisions", "4bit",
                          says="use --precision fp32 or bf16")


# --- Hub ids and download, offline ------------------------------------------------------------

def hub_cache(cache: Path, repo: str, files: dict[str, Path], ref: str = "main") -> str:
    """Lay out `files` in `cache` the way huggingface_hub stores a downloaded repo: blobs, a
    snapshot folder of symlinks named by commit, and a ref pointing at the commit."""
    import hashlib

    commit = hashlib.sha1(repo.encode()).hexdigest()
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    for name, source in files.items():
        data = source.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return commit


def test_download_from_the_hub_cache_offline(tiny_llama, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "hub"
    base_files = {f.name: f for f in tiny_llama.iterdir()}
    pickle = tmp_path / "pytorch_model.bin"
    pickle.write_bytes(b"not to be copied")
    base_commit = hub_cache(cache, "acme/tiny-pricer", base_files | {"pytorch_model.bin": pickle})
    adapter = make_adapter(tiny_llama, tmp_path / "adapter")
    adapter_commit = hub_cache(cache, "acme/tiny-lora", {f.name: f for f in adapter.iterdir()}, ref="v1")

    out = tmp_path / "offline"
    secret = "hf_pricerTestTokenThatMustNeverBePrinted"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "COLUMNS": "200", "HF_TOKEN": secret}
    done = subprocess.run([sys.executable, "-c", "from pricer.cli import main; main()", "model", "download", "acme/tiny-pricer",
                           "--adapter", "acme/tiny-lora", "--adapter-revision", "v1", "--out", str(out)],
                          env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "HF_HUB_OFFLINE=1" in done.stdout
    assert secret not in done.stdout + done.stderr + (out / "pricer-download.json").read_text()
    manifest = json.loads((out / "pricer-download.json").read_text())
    assert manifest["base"]["commit"] == base_commit and manifest["adapter"]["commit"] == adapter_commit
    assert manifest["adapter"]["revision"] == "v1"
    assert (out / "base" / "model.safetensors").is_file() and not (out / "base" / "pytorch_model.bin").exists()
    model, tokenizer = load_model(str(out / "base"), adapter=str(out / "adapter"), precision="fp32")
    assert type(model).__name__ == "PeftModelForCausalLM" and len(tokenizer("123").input_ids) >= 3

    # Hub ids (base, and adapter at a revision) load straight from the cache when offline
    script = ("from pricer.models.load import load_model; m, _ = load_model('acme/tiny-pricer', "
              "adapter='acme/tiny-lora', adapter_revision='v1', precision='fp32'); print(type(m).__name__)")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "PeftModelForCausalLM", done.stderr

    # ... and, in this process, resolve from the cache when offline or fail in one line
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    code, out_text, _ = run_cli(capsys, "model", "inspect", "--model", "acme/tiny-pricer", "--json")
    assert code == 0 and json.loads(out_text)["layers"] == 2
    assert_one_line_error(capsys, "model", "inspect", "--model", "acme/not-downloaded", says="HF_HUB_OFFLINE")
    assert_one_line_error(capsys, "model", "download", "acme/tiny-pricer", "--revision", "v9", "--out",
                          str(tmp_path / "x"), says="not in the local Hub cache")


def test_hub_adapter_keeps_the_prompt_format_it_was_trained_with(tiny_llama, tmp_path, monkeypatch):
    """A pricer run pushed to the Hub carries train_config.yaml: resolving the adapter fetches it,
    so a 2025-format adapter is prompted in 2025 format; one without it reads as 2024."""
    import huggingface_hub.constants as hub

    from pricer.models.load import resolve_adapter
    from pricer.models.run import Run

    cache = tmp_path / "hub"
    adapter = make_adapter(tiny_llama, tmp_path / "adapter")
    files = {f.name: f for f in adapter.iterdir()}
    config = tmp_path / "train_config.yaml"
    config.write_text("prompt_format: '2025'\n")
    hub_cache(cache, "acme/lora-2025", files | {"train_config.yaml": config})
    hub_cache(cache, "acme/lora-plain", files)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    assert Run(resolve_adapter("acme/lora-2025")).prompt_format == "2025"
    assert Run(resolve_adapter("acme/lora-plain")).prompt_format is None  # the caller's 2024


# --- the real default model ---------------------------------------------------------------------

@pytest.mark.slow
def test_default_model_footprints_in_each_mode(capsys, default_model_dir):
    code, out, _ = run_cli(capsys, "model", "memory", "--model", "default", "--json")
    assert code == 0
    rows = {row["precision"]: row["bytes"] for row in json.loads(out)["rows"]}
    assert rows["4bit"] < rows["8bit"] < rows["bf16"] < rows["fp32"]
    assert rows["fp32"] == 134_515_008 * 4 + 2 * 32 * 4  # every parameter + the rotary buffers (fp32)


def test_auto_precision_is_the_one_rule_and_read_back_from_the_model(tiny_llama):
    """load_base settles "auto" with resolve_precision, and the precision is read back from what
    transformers keeps on the model (no tag of ours)."""
    from pricer.models.load import load_base
    from pricer.models.precision import precision_of, resolve_precision

    expected = resolve_precision("auto", "cpu", purpose="inference").name
    model = load_base(str(tiny_llama), "auto", "cpu")
    assert precision_of(model) == expected and not hasattr(model, "pricer_precision")
    assert precision_of(load_base(str(tiny_llama), "4bit", "cpu")) == "4bit"
    assert precision_of(load_base(str(tiny_llama), "8bit", "cpu")) == "8bit"


@pytest.mark.slow
def test_adapter_naming_the_public_base_loads_offline_on_the_default(default_model_dir, tmp_path,
                                                                     monkeypatch):
    """pricer train records the default's Hub id as the adapter's base, not the cache folder
    (and its model card names it); with no network the adapter still loads on --model default."""
    import warnings

    from pricer.models.default import DEFAULT_HUB_ID
    from pricer.train.config import load_config
    from pricer.train.run import train

    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"text": f"Steel hose reel, {n} m", "price": 20.0 + n}) + "\n"
                            for n in range(4)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = train(load_config(None, {"model": "default", "data": str(data), "lora_r": 4,
                                       "out": str(tmp_path / "adapter"), "max_steps": 1,
                                       "batch_size": 4, "report_to": "none", "eval": False}))
    assert not [w for w in caught if DEFAULT_HUB_ID in str(w.message)]  # no Hub look-up at saves
    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == DEFAULT_HUB_ID
    card = (out / "README.md").read_text()
    assert "fine-tuned version of [None]" not in card and DEFAULT_HUB_ID in card
    model, _ = load_model("default", adapter=str(tmp_path / "adapter"), precision="fp32")
    assert type(model).__name__ == "PeftModelForCausalLM"
