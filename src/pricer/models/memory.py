"""Memory footprint of a model at each precision: measured by loading it, or estimated from shapes.

`get_memory_footprint()` (transformers) adds up the bytes of every parameter and buffer. The
estimate does the same sum from a meta-device model: 4 bytes per parameter in fp32, 2 in bf16;
in 8-bit / 4-bit the linear layers inside the decoder take 1 / 0.5 bytes per weight while the
rest (embeddings, norms, lm_head) stays bf16. A LoRA adapter adds its parameters in fp32.
This reproduces the reference's Llama 3.1 8B figures (32.1 / 16.06 / 9.08 / 5.59 GB, 5.70 with
the r=32 adapter) without downloading a byte of it.
"""

import gc

BYTES_PER_WEIGHT = {"fp32": 4.0, "bf16": 2.0, "8bit": 1.0, "4bit": 0.5}


def estimate_bytes(config, precision: str) -> int:
    """Footprint of the model described by `config` at `precision`, from its shapes alone."""
    import torch

    from pricer.models.arch import meta_model

    model = meta_model(config)
    skip = {id(model.get_output_embeddings())}  # bitsandbytes never quantises lm_head
    total, seen = 0.0, set()
    for module in model.modules():
        quantised = isinstance(module, torch.nn.Linear) and id(module) not in skip
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:  # tied embeddings: one tensor, two modules
                continue
            seen.add(id(param))
            if precision in ("fp32", "bf16"):
                per = BYTES_PER_WEIGHT[precision]
            else:
                per = BYTES_PER_WEIGHT[precision] if quantised and name == "weight" else 2.0
            total += param.numel() * per
    total += sum(b.numel() * b.element_size() for b in model.buffers())
    return int(total)


def estimate(config, precisions, lora_params: int = 0) -> list[dict]:
    """One row per precision: estimated bytes, and with a fp32 LoRA adapter when lora_params."""
    rows = []
    for p in precisions:
        n = estimate_bytes(config, p)
        rows.append({"precision": p, "bytes": n, "with_adapter_bytes": n + 4 * lora_params if lora_params else None,
                     "estimate": True})
    return rows


def measure(model: str, precisions, adapter: str | None = None, device: str | None = None,
            on_loaded=None, **load_options) -> list[dict]:
    """Load `model` at each precision in turn and record get_memory_footprint() (and with the
    adapter attached). `on_loaded(precision)` is called after each, for progress bars."""
    from pricer.models.load import attach_adapter, load_base

    rows = []
    for p in precisions:
        loaded = load_base(model, p, device, **{k: v for k, v in load_options.items() if k != "adapter_revision"})
        row = {"precision": p, "bytes": loaded.get_memory_footprint(), "with_adapter_bytes": None,
               "estimate": False}
        if adapter:
            peft = attach_adapter(loaded, adapter, load_options.get("adapter_revision"),
                                  load_options.get("allow_pickle", False))
            row["with_adapter_bytes"] = peft.get_memory_footprint()
            del peft
        rows.append(row)
        del loaded
        gc.collect()
        if on_loaded:
            on_loaded(p)
    return rows
