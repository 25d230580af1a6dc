"""`pricer model ...`: memory footprint per precision, inspect (architecture + LoRA sizes), download."""

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pricer.errors import PricerError

app = typer.Typer(help="Load, inspect and download base models and adapters.", no_args_is_help=True)
console = Console()

MODEL = typer.Option("default", "--model", "-m", help='"default", a local folder, or a Hub id.')
REVISION = typer.Option(None, help="Hub branch, tag or commit of the model.")
ADAPTER_REVISION = typer.Option(None, help="Hub branch, tag or commit of the adapter.")
ALLOW_PICKLE = typer.Option(False, "--allow-pickle", help="Also accept pickle (.bin) weights (can run code: only if you trust them).")
TRUST_CODE = typer.Option(False, "--trust-remote-code", help="Run Python code shipped in the model repo (off by default).")
JSON = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


def quiet() -> None:
    """Hide library chatter that means nothing to a user here (bitsandbytes' optional CPU kernel
    package, PEFT's deprecation notices)."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def human(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


@app.command()
def memory(
    model: str = MODEL,
    precisions: str = typer.Option("fp32,bf16,8bit,4bit", help="Comma-separated: fp32, bf16, 8bit, 4bit."),
    adapter: str = typer.Option(None, help="LoRA adapter (folder or Hub id) to add to each row."),
    config: Path = typer.Option(None, "--model-config", help="Estimate from this config.json (or its folder) alone: no weights loaded."),
    r: int = typer.Option(None, "--r", help="With --model-config: add a LoRA adapter of this rank on --targets."),
    targets: str = typer.Option("q_proj,k_proj,v_proj,o_proj", help="With --model-config and --r: LoRA target modules."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1... (default: a GPU when there is one)."),
    revision: str = REVISION,
    adapter_revision: str = ADAPTER_REVISION,
    allow_pickle: bool = ALLOW_PICKLE,
    trust_remote_code: bool = TRUST_CODE,
    json_out: bool = JSON,
) -> None:
    """Memory footprint at each precision (fp32, bf16, 8-bit, 4-bit).

    Loads the model in each mode and reports get_memory_footprint(), like the reference's
    32.1 / 9.1 / 5.59 GB for Llama 3.1 8B. With --model-config: estimated from shapes, no weights."""
    quiet()
    from pricer.models import memory as mem
    from pricer.models.arch import lora_report, read_config

    wanted = split_list(precisions)
    bad = [p for p in wanted if p not in mem.BYTES_PER_WEIGHT]
    if bad or not wanted:
        raise PricerError(f"unknown precision {', '.join(bad) or '(none)'} (choose from fp32, bf16, 8bit, 4bit)")
    if config is not None:
        if adapter:
            raise PricerError("--adapter needs the model's weights; with --model-config give the adapter's --r")
        cfg = read_config(config=config)
        lora = lora_report(cfg, r, 2 * r, split_list(targets))["lora_params"] if r else 0
        rows, name = mem.estimate(cfg, wanted, lora), str(config)
    else:
        if r:
            raise PricerError("--r is for --model-config estimates; give a real adapter with --adapter")
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task(f"loading {model}", total=len(wanted))
            rows = mem.measure(model, wanted, adapter, device, revision=revision,
                               adapter_revision=adapter_revision, allow_pickle=allow_pickle,
                               trust_remote_code=trust_remote_code,
                               on_loaded=lambda p: progress.advance(task))
        cfg, name = read_config(model=model, revision=revision, trust_remote_code=trust_remote_code), model
        for row in rows:  # the estimate beside each measurement, as a check on both
            row["estimate_bytes"] = mem.estimate_bytes(cfg, row["precision"])
    if json_out:
        print(json.dumps({"model": name, "estimate": config is not None, "rows": rows}))
        return
    title = f"Memory footprint of {name}" + (" (ESTIMATED from the config, no weights loaded)" if config else "")
    table = Table(title=title)
    table.add_column("precision", style="cyan")
    table.add_column("estimated" if config else "measured", justify="right", style="bold green")
    table.add_column("vs first row", justify="right")
    if adapter or r:
        table.add_column("with adapter", justify="right", style="magenta")
    if not config:
        table.add_column("estimate from shapes", justify="right", style="dim")
    for row in rows:
        cells = [row["precision"], human(row["bytes"]), f"{row['bytes'] / rows[0]['bytes']:.2f}x"]
        if adapter or r:
            cells.append(human(row["with_adapter_bytes"]))
        if not config:
            cells.append(human(row["estimate_bytes"]))
        table.add_row(*cells)
    console.print(table)


@app.command()
def inspect(
    config: Path = typer.Option(None, "--model-config", help="A config.json or its folder (no weights needed)."),
    model: str = typer.Option(None, "--model", "-m", help='Or a model: "default", a folder or a Hub id.'),
    revision: str = REVISION,
    r: int = typer.Option(32, "--r", help="LoRA rank."),
    alpha: int = typer.Option(64, help="LoRA alpha (the update is scaled by alpha/r)."),
    targets: str = typer.Option("q_proj,k_proj,v_proj,o_proj", help="Comma-separated LoRA targets (also gate_proj, up_proj, down_proj)."),
    explain: bool = typer.Option(False, "--explain", help="Add a plain-language walk through one attention block."),
    trust_remote_code: bool = TRUST_CODE,
    json_out: bool = JSON,
) -> None:
    """Architecture and LoRA adapter size, from the config alone.

    Shapes of each target module, A and B for rank r, parameters per module, per layer and in
    total, adapter size on disk, and the fraction of the base model that trains."""
    quiet()
    from pricer.models.arch import explain as explain_text
    from pricer.models.arch import lora_report, read_config

    if config is not None and model is not None:
        raise PricerError("give --model-config or --model, not both")
    if config is None and model is None:
        model = "default"
    cfg = read_config(config=config, model=model, revision=revision, trust_remote_code=trust_remote_code)
    rep = lora_report(cfg, r, alpha, split_list(targets), name=str(config or model))
    if json_out:
        if explain:
            rep["explain"] = explain_text(rep)
        print(json.dumps(rep))
        return

    arch = Table(title=f"{rep['model']} ({rep['architecture']})", show_header=False)
    arch.add_column(style="cyan")
    arch.add_column(justify="right", style="bold")
    arch.add_column(style="dim")
    group = rep["heads"] // rep["kv_heads"]
    for label, value, note in [
        ("layers", rep["layers"], "decoder blocks"),
        ("hidden size", rep["hidden_size"], "numbers per token"),
        ("attention heads", rep["heads"], f"head dim {rep['head_dim']}"),
        ("key/value heads", rep["kv_heads"],
         f"grouped-query attention: {group} query heads share each k/v head, so k/v are {group}x smaller"
         if group > 1 else "one per query head"),
        ("MLP size", rep["intermediate_size"], "gate/up project to it, down projects back"),
        ("vocabulary", rep["vocab_size"], "tied to the input embeddings" if rep["tied_embeddings"] else "separate lm_head"),
        ("base parameters", f"{rep['base_params']:,}", f"from shapes; meta-device model: {rep['base_params_meta']:,}"),
    ]:
        arch.add_row(label, str(value), note)
    console.print(arch)

    lora = Table(title=f"LoRA r={r}, alpha={alpha} (scale {rep['scale']:g}) on {len(rep['modules'])} modules x {rep['layers']} layers")
    for col, style in [("module", "cyan"), ("in -> out", ""), ("A (r x in)", ""), ("B (out x r)", ""),
                       ("LoRA params", "bold green"), ("vs frozen W", "dim")]:
        lora.add_column(col, style=style, justify="left" if col == "module" else "right")
    for m in rep["modules"]:
        lora.add_row(m["name"], f"{m['in']:,} -> {m['out']:,}", f"{m['A'][0]} x {m['A'][1]:,}",
                     f"{m['B'][0]:,} x {m['B'][1]}", f"{m['params']:,}", f"{m['params'] / m['base_params']:.2%}")
    lora.add_row("per layer", "", "", "", f"{rep['lora_params_per_layer']:,}", "", style="bold")
    console.print(lora)
    check = "[green]agrees[/]" if rep["cross_check_ok"] else "[red]DISAGREES[/]"
    console.print(
        f"[bold]total LoRA parameters:[/] [bold green]{rep['lora_params']:,}[/] "
        f"(PEFT on a meta-device model: {rep['lora_params_peft']:,}, {check})\n"
        f"[bold]adapter on disk:[/] {rep['lora_mb_fp32']} MB in fp32, {rep['lora_mb_bf16']} MB in bf16 "
        f"(MB = 10^6 bytes)\n"
        f"[bold]trains:[/] {rep['trainable_fraction']:.3%} of the base model's parameters")
    if explain:
        console.print()
        console.print(explain_text(rep), highlight=False)


@app.command()
def download(
    base: str = typer.Argument(..., help="Base model Hub id, e.g. meta-llama/Llama-3.1-8B."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write OUT/base (and OUT/adapter) into."),
    adapter: str = typer.Option(None, help="LoRA adapter Hub id."),
    revision: str = REVISION,
    adapter_revision: str = ADAPTER_REVISION,
    allow_pickle: bool = ALLOW_PICKLE,
) -> None:
    """Download a base model (and adapter) into a folder for offline use.

    Safetensors only unless --allow-pickle. Tokens come from HF_TOKEN or `hf auth login` and
    are never printed."""
    quiet()
    from pricer.models.download import download as fetch_all

    with console.status(f"downloading {base}" + (f" and {adapter}" if adapter else "")):
        manifest = fetch_all(base, out, adapter, revision, adapter_revision, allow_pickle)
    table = Table(title=f"Downloaded into {out}")
    for col in ("role", "repo", "revision", "commit", "files"):
        table.add_column(col, style="cyan" if col == "role" else "")
    for role, item in manifest.items():
        table.add_row(role, item["repo"], item["revision"], item["commit"][:12], str(len(item["files"])))
    console.print(table)
    use = f"--model {out / 'base'}" + (f" --adapter {out / 'adapter'}" if adapter else "")
    console.print(f"Offline from now on: [bold]HF_HUB_OFFLINE=1 pricer ... {use}[/]")
