"""GGUF export through llama.cpp's own converter and quantizer, for the families the course uses:
SmolLM2 (tiny_llama: SmolLM2's tokenizer), a Llama-3.2-style model (the real Llama 3 tokenizer,
rope type llama3, tied embeddings) and a Qwen 2.5-style model (the real Qwen2 tokenizer,
attention biases). The Llama 3 and Qwen2 tokenizers are the vocab-only GGUFs that llama.cpp's
sources ship (vendor/llama.cpp/models/ in llama-cpp-python's sdist), read by transformers.
Random weights, so the answers are compared with transformers' (next token), not read as prices."""

import json
from collections import Counter

import pytest
import torch

from clirun import assert_bad_input, assert_ok, pricer
from conftest import AMAZON_TEST

N_PROMPTS = 40  # tokenized by both
N_ANSWERED = 8  # their next token after every position (~1,500 answers), by both
TYPES = ("f16", "q8_0", "q4_k_m")


def vocab_tokenizer(gguf_name: str, folder):
    """transformers' tokenizer from a vocab-only GGUF of llama.cpp's sources, saved in `folder`."""
    from transformers import AutoTokenizer

    from pricer.export.llamacpp import vendored

    root = vendored(f"models/{gguf_name}")
    tokenizer = AutoTokenizer.from_pretrained(root / "models", gguf_file=gguf_name)
    tokenizer.save_pretrained(folder)
    return tokenizer


def llama3_tokenizer(folder):
    """Llama 3's tokenizer as the Hub's Llama 3.1/3.2 ship it: <|begin_of_text|> added in front
    of every text, <|end_of_text|> as eos, 128,256 tokens (transformers' GGUF reader adds an
    <|endoftext|> that Llama 3 does not have: taken out)."""
    vocab_tokenizer("ggml-vocab-llama-bpe.gguf", folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["id"] < 128256]
    spec["model"]["vocab"] = {t: i for t, i in spec["model"]["vocab"].items() if i < 128256}
    bos = "<|begin_of_text|>"
    spec["post_processor"] = {"type": "TemplateProcessing",
                              "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}}],
                              "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                                       {"Sequence": {"id": "A", "type_id": 0}},
                                       {"SpecialToken": {"id": bos, "type_id": 1}},
                                       {"Sequence": {"id": "B", "type_id": 1}}],
                              "special_tokens": {bos: {"id": bos, "ids": [128000], "tokens": [bos]}}}
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    return edit_config(folder, bos_token=bos, eos_token="<|end_of_text|>", unk_token=None,
                       pad_token=None)


def edit_config(folder, **settings):
    from transformers import AutoTokenizer

    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(settings)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return AutoTokenizer.from_pretrained(folder)


def save_random(config, tokenizer, folder):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_llama3(tmp_path_factory):
    """Llama 3.2 1B/3B's shape in small: rope llama3, tied embeddings, GQA; hidden 256 and
    intermediate 512 so that llama.cpp's Q4_K (rows of 256) is really used."""
    from transformers import LlamaConfig

    folder = tmp_path_factory.mktemp("tiny-llama3")
    tokenizer = llama3_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=128256, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072,
        rope_theta=500000.0, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001,
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    return save_random(config, tokenizer, folder)


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    """Qwen 2.5's shape in small: q/k/v biases, GQA, untied output."""
    from transformers import Qwen2Config

    folder = tmp_path_factory.mktemp("tiny-qwen2")
    vocab_tokenizer("ggml-vocab-qwen2.gguf", folder)
    tokenizer = edit_config(folder, bos_token=None)  # as Qwen 2.5's: no bos
    config = Qwen2Config(
        vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768,
        rope_theta=1000000.0, tie_word_embeddings=False, eos_token_id=151643)
    return save_random(config, tokenizer, folder)


# family -> (fixture, the Modelfile's stops, num_predict for "99999.99" + an end token)
FAMILIES = {
    "smollm2": ("tiny_llama", ["<|im_end|>", "<|endoftext|>"], 9),
    "llama3": ("tiny_llama3", ["<|end_of_text|>", "<|eot_id|>"], 5),
    "qwen2": ("tiny_qwen2", ["<|endoftext|>", "<|im_end|>"], 9),
}


@pytest.fixture(scope="module")
def prompts():
    from pricer.data.items import read_items

    return [item.prompt for item in read_items(AMAZON_TEST)[:N_PROMPTS]]


@pytest.fixture(scope="module", params=list(FAMILIES))
def exported(request, tmp_path_factory):
    """`pricer export --gguf f16 --gguf q8_0 --gguf q4_k_m` of the family's tiny model."""
    model = request.getfixturevalue(FAMILIES[request.param][0])
    out = tmp_path_factory.mktemp(f"export-{request.param}")
    args = [a for t in TYPES for a in ("--gguf", t)]
    assert_ok(pricer("export", "--model", model, *args, "--dtype", "fp32", "--out", out,
                     "--overwrite"))
    return request.param, model, out / "gguf"


def load(path, n_ctx=64, **options):
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, verbose=False, **options)


def next_tokens(llm, batches) -> list[int]:
    """llama.cpp's argmax after every token of every prompt (given as token ids)."""
    answers = []
    for ids in batches:
        llm.reset()
        llm.eval(ids)
        answers += llm.scores[:len(ids)].argmax(axis=1).tolist()
    return answers


def test_each_type_loads_in_llama_cpp_with_its_tensor_types(exported):
    """Each file loads in llama.cpp as the type it was asked for; the Q4_K_M file's tensors (read
    with the gguf package: slow on a 150k-token vocabulary, so this one file) are llama.cpp's mix."""
    from gguf import GGUFReader, LlamaFileType

    family, _, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == ["Modelfile"] + [
        f"pricer-{t}.gguf" for t in ("f16", "q4_k_m", "q8_0")]
    for kind in TYPES:
        meta = load(folder / f"pricer-{kind}.gguf").metadata
        assert meta["general.architecture"] == {"qwen2": "qwen2"}.get(family, "llama")
        assert int(meta["general.file_type"]) == LlamaFileType[f"MOSTLY_{kind.upper()}"]
    reader = GGUFReader(folder / "pricer-q4_k_m.gguf")
    types = Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) > 1)
    if family == "llama3":  # rows of 256: llama.cpp's Q4_K_M mix, no fallback
        assert types["Q4_K"] >= sum(types.values()) // 2 and set(types) == {"Q4_K", "Q6_K"}
    else:  # rows of 64: too short for Q4_K, llama.cpp falls back to other types
        assert "F16" not in types and "F32" not in types and types
    names = {t.name for t in reader.tensors}
    assert ("output.weight" in names) == (family == "qwen2")  # tied in SmolLM2 and Llama 3.2
    assert ("blk.0.attn_q.bias" in names) == (family == "qwen2")
    assert ("rope_freqs.weight" in names) == (family == "llama3")  # rope type llama3


def test_llama_cpp_tokenizes_and_answers_as_transformers(exported, prompts):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    family, model_dir, folder = exported
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    vocab = load(folder / "pricer-f16.gguf", vocab_only=True)
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    assert [vocab.tokenize(p.encode(), add_bos=True, special=False) for p in prompts] == ids
    assert (ids[0][0] == 128000) == (family == "llama3")  # Llama 3 starts with <|begin_of_text|>

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = ids[:N_ANSWERED]
    with torch.inference_mode():  # the next token after every token of every prompt
        reference = sum((model(torch.tensor([i])).logits[0].argmax(-1).tolist() for i in ids), [])
    assert len(set(reference)) > 20  # random weights, yet many different answers
    for kind, share in (("f16", 0.95), ("q8_0", 0.9)):
        llm = load(folder / f"pricer-{kind}.gguf", n_ctx=max(map(len, ids)), logits_all=True)
        answers = next_tokens(llm, ids)
        same = sum(a == r for a, r in zip(answers, reference)) / len(reference)
        assert same >= share, (kind, same)


def test_modelfile_per_family(exported):
    family, _, folder = exported
    _, stops, num_predict = FAMILIES[family]
    lines = (folder / "Modelfile").read_text().splitlines()
    assert lines[0] == "FROM ./pricer-q4_k_m.gguf"  # Ollama's usual type when it was exported
    assert 'TEMPLATE "{{ .Prompt }}"' in lines and "PARAMETER temperature 0" in lines
    assert f"PARAMETER num_predict {num_predict}" in lines
    assert [line for line in lines if line.startswith("PARAMETER stop")] == [
        f'PARAMETER stop "{s}"' for s in stops]
    card = (folder.parent / "README.md").read_text()
    assert "q4_k_m" in card and f"family `{'qwen2' if family == 'qwen2' else 'llama'}`" in card


def test_unsupported_family_and_type_give_one_line(tiny_llama, tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2)
                    ).save_pretrained(gpt2)
    tokenizer.save_pretrained(gpt2)
    line = assert_bad_input(pricer("export", "--model", gpt2, "--gguf", "f16", "--out",
                                   tmp_path / "a"), "gpt2", "llama", "qwen2", "Qwen 2.5")
    assert "supported" in line
    assert_bad_input(pricer("export", "--model", tiny_llama, "--gguf", "q4_0", "--out",
                            tmp_path / "b"), "q4_0", "f16", "bf16", "q8_0", "q4_k_m")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_failed_conversion_or_an_unloadable_file_leaves_nothing(tiny_llama, tmp_path):
    """A folder whose weights are cut short: the converter fails; a GGUF cut short (a real one
    of llama.cpp's sources): llama.cpp cannot quantize or load it. Either way one PricerError
    line, and no file at the target or beside it."""
    import shutil

    from pricer.errors import PricerError
    from pricer.export.llamacpp import _child, export_gguf, vendored

    broken = tmp_path / "broken"
    shutil.copytree(tiny_llama, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:len(weights.read_bytes()) // 2])
    target = tmp_path / "out" / "pricer-q8_0.gguf"
    with pytest.raises(PricerError, match="converter failed") as failed:
        export_gguf(broken, target, "q8_0")
    assert "\n" not in str(failed.value)
    assert list(target.parent.iterdir()) == []

    cut = tmp_path / "cut.gguf"
    real = vendored("models/ggml-vocab-llama-bpe.gguf") / "models" / "ggml-vocab-llama-bpe.gguf"
    cut.write_bytes(real.read_bytes()[:1_000_000])
    with pytest.raises(PricerError, match="llama.cpp cannot load"):
        _child("check", cut)
    target = tmp_path / "out" / "pricer-q4_k_m.gguf"
    with pytest.raises(PricerError, match="llama.cpp"):
        export_gguf(tiny_llama, target, "q4_k_m", f16_gguf=cut)
    assert list(target.parent.iterdir()) == []


def test_a_wrong_source_distribution_gives_one_line(tmp_path, monkeypatch):
    from pricer.errors import PricerError
    from pricer.export.llamacpp import converter, llama_cpp_version

    monkeypatch.setenv("PRICER_CACHE", str(tmp_path / "cache"))  # nothing taken out yet
    monkeypatch.setenv("PRICER_LLAMA_CPP_SDIST", str(tmp_path / "missing.tar.gz"))
    with pytest.raises(PricerError, match="missing.tar.gz: no such file"):
        converter()
    (tmp_path / "notes.tar.gz").write_text("not an archive")
    monkeypatch.setenv("PRICER_LLAMA_CPP_SDIST", str(tmp_path / "notes.tar.gz"))
    with pytest.raises(PricerError, match="not llama-cpp-python's source") as error:
        converter()
    assert "\n" not in str(error.value)
    assert not (tmp_path / "cache" / "llama.cpp" / llama_cpp_version() / "conversion").exists()
