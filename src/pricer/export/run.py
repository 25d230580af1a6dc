"""One export: merge, then write what was asked for (safetensors folder, GGUF files, Modelfile,
model card) into one output folder."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import nullcontext
from pathlib import Path

from pricer.errors import PricerError, writing
from pricer.export import card, llamacpp, merge, modelfile
from pricer.models.run import Run
from pricer.models.load import config_file


def export(model: str, adapter: str | None, out: Path, *, merged_folder: bool = True,
           gguf_types: tuple[str, ...] = (), dtype: str = "bf16", overwrite: bool = False,
           progress=None) -> dict:
    """Write `out`/ (merged safetensors + tokenizer + config when `merged_folder`),
    `out`/gguf/pricer-TYPE.gguf (made by llama.cpp from the merged folder, one per type) +
    Modelfile, and `out`/README.md (model card). `progress(message)` is called before each step.
    Returns {"out": str, "files": [...], "caveat": str|None}."""
    say = progress or (lambda message: None)
    if not merged_folder and not gguf_types:
        raise PricerError("nothing to export: give --merge and/or --gguf TYPE")
    gguf_types = tuple(dict.fromkeys(llamacpp.check_type(kind) for kind in gguf_types))
    if adapter and Run(adapter).is_head():  # what a merge keeps is the decoder, never the head
        raise PricerError(f"{adapter}: a run trained with --head regression: a GGUF or merged "
                          "model would drop its regression head and answer from LoRA weights "
                          "never trained to write a price; price with it through pricer "
                          "(pricer predict/serve --predictor head --adapter RUN)")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise PricerError(f"{out} is not empty (pass --overwrite to replace a pricer export)")
        if not (out / "README.md").exists():
            raise PricerError(f"{out} holds something that is not a pricer export; not replacing it")
        shutil.rmtree(out)
    if gguf_types:  # before the merge, which can take minutes
        llamacpp.family(config_file(model))
    say(f"merging {model}" + (f" + {adapter}" if adapter else "") + f" ({dtype})")
    merged = merge.merge(model, adapter, dtype=dtype)
    files = []
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        if merged_folder:
            say(f"saving the merged model in {out}")
            merge.save(merged, out)
            files += sorted(p.name for p in out.iterdir())
        if gguf_types:
            # llama.cpp converts a folder: the merged one, or a temporary copy of it
            folder = nullcontext(out) if merged_folder else tempfile.TemporaryDirectory(
                dir=out, prefix=".merged-")
            with folder as source:
                if not merged_folder:
                    merge.save(merged, Path(source))
                f16 = out / "gguf" / "pricer-f16.gguf"
                for kind in sorted(gguf_types, key=lambda t: t != "f16"):  # f16 first: reused
                    path = llamacpp.export_gguf(source, out / "gguf" / f"pricer-{kind}.gguf", kind,
                                                progress=say, f16_gguf=f16 if f16.exists() else None)
                    files.append(f"gguf/{path.name}")
            name = f"pricer-{modelfile.chosen(gguf_types)}.gguf"
            (out / "gguf" / "Modelfile").write_text(modelfile.modelfile(name, merged.tokenizer))
            files.append("gguf/Modelfile")
        (out / "README.md").write_text(card.model_card(merged, files + ["README.md"], gguf_types))
    return {"out": str(out), "files": files + ["README.md"], "caveat": merged.caveat}
