"""`pricer demo`: the quick start's main job, the whole loop on the offline default.

    demo catalog (real diamonds)  ->  constant baseline  ->  base SmolLM2-135M
        ->  LoRA fine-tune  ->  fine-tuned model  ->  leaderboard

Every step is an ordinary pricer command underneath (`pricer data --demo`, `pricer eval`,
`pricer train --config demo`, `pricer leaderboard`); this one only chains them. The fine-tuned
model is evaluated once, by pricer.evaluate.run.evaluate_run, which records it in the run card.
"""

from pathlib import Path
from typing import Annotated

import typer



def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the data set, the adapter and the results.")] = Path("runs/quickstart"),
    config: Annotated[str, typer.Option("--config", "-c", help="Training config: a YAML path or a shipped one by name.")] = "demo",
    eval_size: Annotated[str, typer.Option(help="Test items to score each predictor on, or 'all'.")] = "250",
    predictor: Annotated[str, typer.Option(help="How to read the LLM's price: greedy or expected.")] = "greedy",
    results: Annotated[Path | None, typer.Option(help="Folder of result JSONs and charts (default: OUT/results).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Retrain even when OUT already holds a finished run.")] = False,
) -> None:
    """Run the whole loop on the offline default: curate the demo catalog, score the constant
    baseline and the base model, fine-tune SmolLM2-135M with LoRA, score it, show the leaderboard."""
    from rich.console import Console
    from rich.rule import Rule

    from pricer.cli.train import progress_bar
    from pricer.data.demo import build_demo_catalog
    from pricer.data.items import read_items
    from pricer.evaluate import leaderboard as lb
    from pricer.data.store import price_bounds
    from pricer.evaluate.harness import evaluate
    from pricer.evaluate.run import evaluate_run
    from pricer.predict.registry import make_predictor
    from pricer.train.config import load_config
    from pricer.models.run import CARD_MD, Run
    from pricer.train.run import train

    from pricer.cli.evaluate import eval_size_of

    eval_size = eval_size_of(eval_size)
    run = load_config(config, {"data": str(out / "data"), "out": str(out / "adapter"), "eval": False})
    console = Console()
    model = "SmolLM2-135M" if run.model == "default" else Path(run.model).name
    data, adapter, results = out / "data", out / "adapter", results or out / "results"

    console.print(Rule("1. data: the offline demo catalog"))
    if not (data / "dataset_dict.json").exists():
        from pricer.models.load import load_tokenizer

        build_demo_catalog(data, tokenizer=load_tokenizer("default"), show=True)
    else:
        console.print(f"reusing {data}")
    train_items, test_items = read_items(data, split="train"), read_items(data, split="test")

    console.print(Rule("2. baseline: constant (the train mean)"))
    constant = make_predictor("constant").fit(train_items,
                                              [i.price for i in train_items])
    max_price = price_bounds(data)[1]  # the catalog's own curation bound (diamonds: $20,000)
    scores = {"constant": evaluate(constant, test_items, size=eval_size, name="constant",
                                   max_price=max_price,
                                   results_dir=results, show=False)}
    console.print(_line("constant", scores["constant"]))

    console.print(Rule(f"3. base model: {model}, {predictor}"))
    base = make_predictor(predictor, model=run.model)
    scores["base"] = evaluate(base, test_items, size=eval_size, name=f"base {model} ({predictor})",
                              max_price=max_price, results_dir=results, show=False,
                              progress=True, console=console)
    console.print(_line("base model", scores["base"]))
    del base

    console.print(Rule("4. fine-tune: LoRA on the demo catalog"))
    finished = Run(adapter).has_adapter() and not overwrite
    if finished:
        console.print(f"reusing the finished run in {adapter} (--overwrite to train again)")
    else:
        train(run, overwrite=Run(adapter).exists(), callbacks=[progress_bar(console)],
              say=lambda line: console.print(line, highlight=False, markup=False))

    console.print(Rule(f"5. fine-tuned model, {predictor}"))
    scores["tuned"] = evaluate_run(adapter, test_items, eval_data=str(data), predictor=predictor,
                                   model=run.model, size=eval_size or len(test_items), results_dir=results,
                                   name=f"fine-tuned {model} ({predictor})", by="pricer demo",
                                   show=False, progress=True, console=console)
    console.print(_line("fine-tuned", scores["tuned"]))

    console.print(Rule("6. leaderboard"))
    found, _ = lb.read_results(results)
    board = lb.rows(found, with_reference=False)
    console.print(lb.table(board, title=f"demo catalog, {f'first {eval_size}' if eval_size else 'all'} test items"))
    console.print(f"run card: {adapter / CARD_MD} (evaluated by pricer demo)")
    chart = lb.bar_chart(board, results / "leaderboard.png")
    beats = all(scores["tuned"][m] < min(scores["constant"][m], scores["base"][m])
                for m in ("error", "rmsle"))
    verdict = "[green]beats[/]" if beats else "[yellow]does not beat[/]"
    console.print(f"the fine-tuned model {verdict} the constant baseline and the base model "
                  f"on error and RMSLE; chart: {chart}", highlight=False)
    console.print(f"serve it: [bold]pricer serve --model {run.model} --adapter {adapter} "
                  f"--examples {data} --similar {data}[/]", highlight=False, soft_wrap=True)


def _line(label: str, result: dict) -> str:
    return (f"[bold]{label}[/]: error ${result['error']:,.2f}  RMSLE {result['rmsle']:.2f}  "
            f"hits {result['hits']:.1f}%  ({result['n']} items)")
