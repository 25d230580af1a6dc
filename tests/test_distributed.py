"""Beyond one process (issue 12 §3): the shipped accelerate configs and the FSDP-QLoRA storage
dtype. What runs here is CPU-only: two DDP processes over gloo through the shipped ddp.yaml;
the FSDP config is parsed by accelerate's own launcher and plugin, not run (no GPUs)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import AMAZON_TRAIN
from pricer.configs.accelerate import CONFIGS, config_path
from pricer.errors import PricerError

# Run by `accelerate launch` in each process: `pricer train` as the CLI runs it, with every batch
# a process trains on recorded (build_trainer wrapped), to show the processes split the data.
RECORDING_TRAIN = textwrap.dedent("""
    import json, os, sys
    import pricer.train.run as run
    from accelerate import PartialState
    from pricer.cli import main

    seen = []
    build = run.build_trainer

    def recording_build_trainer(*args, **kwargs):
        trainer = build(*args, **kwargs)
        step = trainer.training_step

        def training_step(model, inputs, *rest, **kw):
            for ids, mask in zip(inputs["input_ids"].tolist(), inputs["attention_mask"].tolist()):
                seen.append([t for t, m in zip(ids, mask) if m])
            return step(model, inputs, *rest, **kw)

        trainer.training_step = training_step
        return trainer

    run.build_trainer = recording_build_trainer
    sys.argv = ["pricer", *sys.argv[1:]]
    try:
        main()
    except SystemExit as e:
        if e.code:
            raise
    rank = PartialState().process_index
    with open(os.environ["SEEN_DIR"] + f"/seen-{rank}.json", "w") as f:
        json.dump(seen, f)
""")


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    """40 real items of the amazon-pricer training file."""
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("\n".join(AMAZON_TRAIN.read_text().splitlines()[:40]) + "\n")
    return path


def test_config_paths_are_shipped_and_named():
    for name in CONFIGS:
        assert config_path(name).is_file(), name
    shown = subprocess.run([sys.executable, "-m", "pricer.configs.accelerate", "fsdp-qlora"],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.strip() == str(config_path("fsdp-qlora"))
    wrong = subprocess.run([sys.executable, "-m", "pricer.configs.accelerate", "zero3"],
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: unknown accelerate config")
    with pytest.raises(PricerError, match="choose from ddp, fsdp-qlora"):
        config_path("zero3")


def test_two_processes_train_on_different_items_through_the_shipped_ddp_config(
        tiny_llama, train_file, tmp_path):
    """accelerate launch --config_file <shipped ddp.yaml> with 2 CPU processes (gloo): the two
    processes train on different items, the main one saves an adapter that loads."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    from pricer.models.load import load_model

    out, script = tmp_path / "ddp", tmp_path / "recording_train.py"
    script.write_text(RECORDING_TRAIN)
    env = dict(os.environ, OMP_NUM_THREADS="1", SEEN_DIR=str(tmp_path))
    # the shipped file as is; only what a CPU needs is overridden (no bf16 autocast on this CPU)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(config_path("ddp")), "--num_processes", "2", "--mixed_precision", "no",
           str(script), "train", "--model", str(tiny_llama), "--data", str(train_file),
           "--out", str(out), "--max-steps", "2", "--batch-size", "4", "--no-eval",
           "--report-to", "none", "--set", "max_length=96"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((out / "run_card.json").read_text())
    assert card["processes"] == 2 and card["steps"] == 2 and card["items"] == 16
    assert done.stdout.count("trainable params:") == 1  # only the main process reports
    seen = [json.loads((tmp_path / f"seen-{rank}.json").read_text()) for rank in (0, 1)]
    assert [len(s) for s in seen] == [8, 8]  # 2 steps x batch 4 in each process
    first, second = ({tuple(ids) for ids in s} for s in seen)
    assert len(first) == len(second) == 8 and not first & second  # different items
    weights = load_file(out / "adapter_model.safetensors")
    assert all(w.abs().max() > 0 for k, w in weights.items() if "lora_B" in k)  # trained
    model, _ = load_model(str(tiny_llama), adapter=str(out), precision="fp32", device="cpu")
    loaded = get_peft_model_state_dict(model)
    assert loaded.keys() == weights.keys()
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)  # the saved adapter loads


def launch_env(name: str) -> dict:
    """The environment `accelerate launch --config_file <shipped NAME>` gives each process
    (accelerate's own parser, defaults merge and multi-GPU environment), without starting any."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(config_path(name)), "x.py"])
    args, _, _ = _validate_launch_command(args)
    return prepare_multi_gpu_env(args)


def test_ddp_config_is_what_accelerate_reads_as_multi_gpu_bf16():
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(config_path("ddp")))  # refuses unknown keys
    assert config.distributed_type.value == "MULTI_GPU" and config.fsdp_config == {}
    env = launch_env("ddp")
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16" and "ACCELERATE_USE_FSDP" not in env


def test_fsdp_qlora_config_gives_the_guides_fsdp_plugin(monkeypatch):
    """The FSDP-QLoRA guide's settings, as accelerate's FSDP plugin reads them from the launch
    environment the shipped file produces (every fsdp_config key is a launch option: accelerate
    would silently ignore a misspelt one)."""
    import yaml
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin

    ClusterConfig.from_yaml_file(str(config_path("fsdp-qlora")))
    keys = yaml.safe_load(config_path("fsdp-qlora").read_text())["fsdp_config"]
    options = vars(launch_command_parser().parse_args(["x.py"]))
    assert [k for k in keys if k not in options] == []
    env = launch_env("fsdp-qlora")
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    # sync_module_states makes the plugin ask for the current GPU (used only when the model is
    # wrapped): this CPU has none, so it is told GPU 0
    monkeypatch.setattr("accelerate.utils.dataclasses.is_cuda_available", lambda: True)
    monkeypatch.setattr("torch.cuda.current_device", lambda: 0)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 1
    assert plugin.sharding_strategy.name == "FULL_SHARD"
    assert plugin.cpu_ram_efficient_loading is True and plugin.sync_module_states is True
    assert plugin.use_orig_params is False
    assert plugin.cpu_offload.offload_params is False
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    assert os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"  # transformers reads this one


def test_4bit_weights_are_stored_in_the_compute_dtype_under_fsdp(monkeypatch):
    import torch

    from pricer.models.quant import quantization_config

    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    alone = quantization_config("4bit", "cpu")
    assert alone.bnb_4bit_quant_storage == torch.uint8  # bitsandbytes' default, one GPU / DDP
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    sharded = quantization_config("4bit", "cpu")
    assert sharded.load_in_4bit and sharded.bnb_4bit_quant_type == "nf4"
    assert sharded.bnb_4bit_compute_dtype == torch.bfloat16
    assert sharded.bnb_4bit_quant_storage == sharded.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config("8bit", "cpu").load_in_8bit  # 8-bit: no storage dtype to set
