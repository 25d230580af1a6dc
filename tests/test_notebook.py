"""The Colab notebook (notebooks/pricer_gpu.ipynb) runs: end to end in its tiny mode (the default
model, a few demo items, 5 steps, the export to GGUF that llama.cpp loads), and its two other
data sources (your own CSV, the course's data set in the Hub's layout) give data sets pricer reads.

The notebook is executed as written, by a Jupyter kernel of this interpreter, with the parameters
injected after its `parameters` cell as papermill does; `pricer` is on the PATH as in an activated
environment or on Colab."""

import json
import os
import sys
import zipfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from conftest import AMAZON_TEST, AMAZON_TRAIN, ROOT

NOTEBOOK = ROOT / "notebooks" / "pricer_gpu.ipynb"
Q4_K_M = 15  # llama.cpp's general.file_type for Q4_K_M (LLAMA_FTYPE_MOSTLY_Q4_K_M)


def with_parameters(notebook, parameters: dict, last_cell: str | None = None):
    """The notebook with a cell of `parameters` after the one tagged `parameters`, cut after the
    first cell whose source contains `last_cell` (None: the whole notebook)."""
    cells = notebook.cells
    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = {value!r}" for name, value in parameters.items()),
        metadata={"tags": ["injected-parameters"]})
    cells = cells[: tagged[0] + 1] + [injected] + cells[tagged[0] + 1:]
    if last_cell is not None:
        cells = cells[: next(i for i, cell in enumerate(cells) if last_cell in cell.source) + 1]
    notebook = nbformat.from_dict(dict(notebook))
    notebook.cells = cells
    return notebook


def execute(notebook, folder: Path, monkeypatch):
    """Run every cell in `folder` with a kernel of this interpreter; a failing cell fails the
    test with its traceback (nbclient's CellExecutionError)."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = folder / ".kernels"
    write_kernel_spec(kernels / "pricer-test")  # argv: this sys.executable -m ipykernel_launcher
    manager = KernelManager(kernel_name="pricer-test",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # one torch thread per process: on this shared 2-core machine two threads mostly wait for each
    # other under load (docs/train.md), 3x slower here at load 9
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    NotebookClient(notebook, km=manager, timeout=900,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def printed(notebook) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs)


def test_the_notebook_runs_end_to_end_in_tiny_mode(tmp_path, monkeypatch):
    from llama_cpp import Llama

    notebook = execute(with_parameters(nbformat.read(NOTEBOOK, as_version=4), {"TINY": True}),
                       tmp_path, monkeypatch)
    work = tmp_path / "pricer-work"
    text = printed(notebook)

    data = json.loads((work / "data" / "report.json").read_text())
    assert data["splits"] == {"train": 32, "test": 10}

    card = json.loads((work / "run" / "run_card.json").read_text())
    assert card["steps"] == 5 and card["items"] == 20  # 5 steps of the recipe's batch 4

    scored = {}
    for name in ("fine-tuned", "base"):
        [path] = (work / "results").glob(f"{name}-*.json")
        scored[name] = json.loads(path.read_text())
        assert scored[name]["n"] == 10
        assert scored[name]["error"] > 0 and 0 <= scored[name]["hits"] <= 100
        assert scored[name]["predictor"] == name and scored[name]["settings"]["model"] == "default"
    assert scored["fine-tuned"]["settings"]["adapter"] == "run"
    assert scored["base"]["settings"]["adapter"] is None
    assert f"'error': {scored['fine-tuned']['error']}" in text  # the notebook showed its figures

    gguf = work / "export" / "gguf" / "pricer-q4_k_m.gguf"
    assert gguf.name in (work / "export" / "gguf" / "Modelfile").read_text()
    model = Llama(model_path=str(gguf), n_ctx=256, verbose=False)
    assert int(model.metadata["general.file_type"]) == Q4_K_M
    prompt = "How much does this cost to the nearest dollar?\n\nRound diamond, 0.5 carat\n\nPrice is $"
    assert model.tokenize(prompt.encode(), add_bos=False)  # llama.cpp reads its tokenizer
    answer = model(prompt, max_tokens=4, temperature=0.0)["choices"][0]["text"]
    assert isinstance(answer, str)

    with zipfile.ZipFile(work / "pricer-adapter.zip") as archive:
        assert {"adapter_model.safetensors", "run_card.json"} <= set(archive.namelist())


def test_the_other_data_sources_give_data_sets_pricer_reads(tmp_path, monkeypatch):
    """Your own CSV (curated by `pricer data`), and the course's data set as `datasets` loads it
    from the Hub (train prompts with their price, test prompts up to `Price is $`)."""
    import csv

    from pricer.data.items import read_items

    listings = [json.loads(line) for line in AMAZON_TRAIN.read_text().splitlines()[:80]]
    with open(tmp_path / "mine.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["title", "description", "price"])
        for item in listings:
            title, _, description = item["text"].partition("\n")
            writer.writerow([title, description, item["price"]])

    course = tmp_path / "course"  # the Hub layout: one file per split, columns text and price
    course.mkdir()
    question = "How much does this cost to the nearest dollar?\n\n"
    tests = [json.loads(line) for line in AMAZON_TEST.read_text().splitlines()[:7]]
    (course / "train.jsonl").write_text("".join(
        json.dumps({"text": f"{question}{i['text']}\n\nPrice is ${round(i['price'])}.00",
                    "price": i["price"]}) + "\n" for i in listings[:12]))
    (course / "test.jsonl").write_text("".join(
        json.dumps({"text": f"{question}{i['text']}\n\nPrice is $", "price": i["price"]}) + "\n"
        for i in tests))

    source = nbformat.read(NOTEBOOK, as_version=4)
    mine = tmp_path / "own"
    mine.mkdir()
    execute(with_parameters(source, {"TINY": True, "DATA": str(tmp_path / "mine.csv"),
                                     "TEXT_COLUMNS": "title,description"}, "save_to_disk"),
            mine, monkeypatch)
    train = read_items(mine / "pricer-work" / "data", split="train")
    test = read_items(mine / "pricer-work" / "data", split="test")
    assert (len(train), len(test)) == (32, 10)  # TINY's sizes, curated from 80 listings
    titles = {item["text"].partition("\n")[0] for item in listings}
    assert all(any(t in item.prompt for t in titles) for item in train + test)

    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setenv("HF_TOKEN", "hf_not_used")  # the login step is skipped when a token is set
    execute(with_parameters(source, {"TINY": False, "HUB_DATASET": str(course)}, "save_to_disk"),
            hub, monkeypatch)
    train = read_items(hub / "pricer-work" / "data", split="train")
    test = read_items(hub / "pricer-work" / "data", split="test")
    assert [item.price for item in train] == [i["price"] for i in listings[:12]]
    assert [item.price for item in test] == [i["price"] for i in tests]
    assert all(item.prompt.endswith("Price is $") and item.prompt.startswith(question)
               for item in train + test)


def test_the_gpu_estimates_meet_the_measurements(monkeypatch):
    """docs/gpu.md's table (notebooks/gpu_estimates.py): the memory model, at the measured run's
    batch, lands within 10 % of the peak measured on the H200, its weights are `pricer model
    memory`'s (5.70 GB: 4-bit + adapter, the reference's figure), the time rule puts the
    reference's own A100 run (batch 16, ~8 hours an epoch) within 1.5x, and the T4 computes in
    fp16."""
    monkeypatch.syspath_prepend(str(ROOT / "notebooks"))
    import gpu_estimates

    result = gpu_estimates.estimate()
    measured, model = result["measured_h200"], result["model_at_h200"]
    assert abs(model["peak_gb"] - measured["peak_gb"]) / measured["peak_gb"] < 0.10
    reference = result["reference_a100_batch16"]
    assert 8 / 1.5 <= reference["hours_per_400k_items"] <= 8 * 1.5
    rows = result["rows"]
    assert {row["weights_gb"] for row in rows if row["recipe"].startswith("Llama 3.1 8B")} == {5.70}
    assert {row["compute"] for row in rows if row["gpu"].startswith("T4")} == {"fp16"}
    assert all(row["fits"] for row in rows)  # QLoRA fits every class, the T4 included
