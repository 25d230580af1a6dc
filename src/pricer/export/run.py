"""One export: merge, then write what was asked for (safetensors folder, GGUF files, Modelfile,
model card) into one output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from pricer.errors import PricerError, writing
from pricer.export import card, gguf, merge, modelfile


def export(model: str, adapter: str | None, out: Path, *, merged_folder: bool = True,
           gguf_types: tuple[str, ...] = (), dtype: str = "bf16", overwrite: bool = False,
           progress=None) -> dict:
    """Write `out`/ (merged safetensors + tokenizer + config when `merged_folder`),
    `out`/gguf/pricer-TYPE.gguf + Modelfile (one per type), and `out`/README.md (model card).
    `progress(message)` is called before each step. Returns {"files": [...], "caveat": str|None}."""
    say = progress or (lambda message: None)
    if not merged_folder and not gguf_types:
        raise PricerError("nothing to export: give --merge and/or --gguf TYPE")
    for kind in gguf_types:
        if kind not in gguf.TYPES:
            raise PricerError(f"unknown GGUF type '{kind}' (choose from {', '.join(gguf.TYPES)})")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise PricerError(f"{out} is not empty (pass --overwrite to replace a pricer export)")
        if not (out / "README.md").exists():
            raise PricerError(f"{out} holds something that is not a pricer export; not replacing it")
        shutil.rmtree(out)
    say(f"merging {model}" + (f" + {adapter}" if adapter else "") + f" ({dtype})")
    merged = merge.merge(model, adapter, dtype=dtype)
    files = []
    with writing(out):
        if merged_folder:
            say(f"saving the merged model in {out}")
            merge.save(merged, out)
            files += sorted(p.name for p in out.iterdir())
        for kind in gguf_types:
            say(f"writing GGUF {kind}")
            path = gguf.write_gguf(merged.model, merged.tokenizer, out / "gguf" / f"pricer-{kind}.gguf",
                                   kind, name=Path(adapter or model).name or "pricer")
            files.append(f"gguf/{path.name}")
        if gguf_types:
            name = f"pricer-{'q8_0' if 'q8_0' in gguf_types else gguf_types[0]}.gguf"
            (out / "gguf" / "Modelfile").write_text(modelfile.modelfile(name, merged.tokenizer))
            files.append("gguf/Modelfile")
        (out / "README.md").write_text(card.model_card(merged, files + ["README.md"]))
    return {"out": str(out), "files": files + ["README.md"], "caveat": merged.caveat}
