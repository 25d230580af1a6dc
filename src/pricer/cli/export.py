"""`pricer export`: merge an adapter into its base, write GGUF files and an Ollama Modelfile."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def export(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the export into.")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Base model: 'default', a local folder or a Hub id (default: the run's).")] = None,
    adapter: Annotated[Optional[str], typer.Option("--run", "-r", "--adapter", help="The run to export (a `pricer train` folder holding a LoRA adapter).")] = None,
    merge: Annotated[bool, typer.Option("--merge", help="Write the merged model as safetensors "
                                        "(loadable by AutoModelForCausalLM.from_pretrained).")] = False,
    gguf: Annotated[Optional[list[str]], typer.Option(
        "--gguf", help="Write a GGUF file of this type, made and checked by llama.cpp: f16, bf16, "
                       "q8_0 or q4_k_m (repeat for several), and an Ollama Modelfile. Families: "
                       "Llama (3.1/3.2, SmolLM2), Qwen 2.5.")] = None,
    dtype: Annotated[str, typer.Option(help="Weights of the merged folder: bf16, fp16 or fp32.")] = "bf16",
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier pricer export in --out.")] = False,
) -> None:
    """Export a (fine-tuned) model: merged safetensors, GGUF for llama.cpp/Ollama, model card."""
    from pricer.export.run import export as run_export
    from pricer.models.run import Run

    model = model or (Run(adapter).config().get("model") if adapter else None) or "default"

    with err.status("exporting") as status:
        result = run_export(model, adapter, out_dir, merged_folder=merge, gguf_types=tuple(gguf or ()),
                            dtype=dtype, overwrite=overwrite,
                            progress=lambda message: status.update(message))
    if result["caveat"]:
        err.print(f"[yellow]caveat:[/] {result['caveat']}", highlight=False)
    out.print(f"[bold green]exported[/] to {result['out']}: {', '.join(result['files'])}",
              highlight=False)
    if gguf:
        out.print(f"Ollama: cd {out_dir}/gguf && ollama create pricer -f Modelfile", highlight=False)
