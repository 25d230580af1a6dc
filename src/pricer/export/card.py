"""The model card (README.md) of an export: what it is, how it was trained, how it scores, how
to run it. Built from the adapter's run card (run_card.json, written by `pricer train`)."""

from __future__ import annotations

from pricer.data.prompts import DEFAULT_FORMAT, PRICE_PREFIX, prompt_format


def _training_lines(run: dict) -> list[str]:
    if not run:
        return ["No run card (run_card.json) was found beside the adapter, so how it was trained "
                "is not recorded here."]
    config = run.get("config") or {}
    lines = [
        f"- data: `{run.get('data')}` (fingerprint `{run.get('data_fingerprint')}`), "
        f"{run.get('items')} items",
        f"- steps: {run.get('steps')} (epochs {float(run.get('epochs') or 0):.2f}), final loss "
        f"{run.get('final_loss')}, {float(run.get('train_seconds') or 0):.0f} s on {run.get('device')}",
    ]
    if config:
        lines.append(f"- LoRA r={config.get('lora_r')}, alpha={config.get('lora_alpha')} on "
                     f"{', '.join(config.get('target_modules') or [])}; base precision "
                     f"{config.get('precision')}; learning rate {config.get('learning_rate')}")
    return lines


def _score_lines(run: dict) -> list[str]:
    ev = run.get("evaluation") or {}
    if not ev:
        return [f"Not evaluated ({run.get('eval_note', 'no evaluation in the run card')})."]
    return [f"{ev.get('predictor')} on {ev.get('n')} items of `{run.get('eval_data')}`: "
            f"mean absolute error ${ev['error']:.2f}, RMSLE {ev['rmsle']:.3f}, "
            f"hits {ev['hits']:.1f}% (measured on the adapter before merging)."]


def _gguf_lines(merged, gguf_types) -> list[str]:
    from pricer.export.llamacpp import FAMILIES
    from pricer.export.modelfile import chosen

    model_type = merged.model.config.model_type
    return ["## GGUF (llama.cpp, Ollama)", "",
            f"Types {', '.join(gguf_types)} (`gguf/pricer-TYPE.gguf`), written by llama.cpp's own "
            f"converter and quantizer and loaded by llama.cpp before being kept; family "
            f"`{model_type}` ({FAMILIES.get(model_type, '?')}). `gguf/Modelfile` runs "
            f"`pricer-{chosen(gguf_types)}.gguf` in Ollama: raw completion, greedy, the family's "
            "end tokens as stops (`ollama create pricer -f Modelfile`).", ""]


def model_card(merged, files: list[str], gguf_types: tuple[str, ...] = ()) -> str:
    """Markdown with a small YAML header (base model, library) that the Hub understands."""
    run = merged.run_card
    trained_with = prompt_format((run.get("config") or {}).get("prompt_format") or DEFAULT_FORMAT)
    what = (f"`{merged.base}` with the LoRA adapter `{merged.adapter}` merged into its weights "
            f"({merged.dtype})" if merged.adapter else f"`{merged.base}` ({merged.dtype}), no adapter")
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [pricer, price-estimation, lora-merged]",
        "---",
        "",
        "# pricer: a product-price estimator",
        "",
        f"A causal language model fine-tuned to write a product's price: {what}.",
        "",
        "## Prompt",
        "",
        "Raw completion, no chat template. The model continues the text after the dollar sign "
        f"with the price (whole dollars and `.00`); prompt format {trained_with.name}"
        + (f", the description cut to {trained_with.description_tokens} tokens:"
           if trained_with.description_tokens else ":"),
        "",
        "```text",
        f"{trained_with.question}",
        "",
        "<title and description of the item>",
        "",
        f"{PRICE_PREFIX}",
        "```",
        "",
        "## How it was trained",
        "",
        *_training_lines(run),
        "",
        "## How it scores",
        "",
        *_score_lines(run),
        "",
    ]
    if merged.caveat:
        lines += ["## Caveat", "", merged.caveat[0].upper() + merged.caveat[1:] + ".", ""]
    if gguf_types:
        lines += _gguf_lines(merged, gguf_types)
    lines += [
        "## Files",
        "",
        *[f"- `{name}`" for name in files],
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "model = AutoModelForCausalLM.from_pretrained('THIS_FOLDER')",
        "tokenizer = AutoTokenizer.from_pretrained('THIS_FOLDER')",
        "```",
        "",
        "or `pricer predict --model THIS_FOLDER \"description\"`, `pricer serve --model THIS_FOLDER`;"
        " the GGUF file (when exported) runs in llama.cpp and Ollama (see the Modelfile).",
        "",
    ]
    return "\n".join(lines)
