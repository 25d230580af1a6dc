"""GGUF files made by llama.cpp itself: its converter (`convert_hf_to_gguf.py`) and its quantizer.

The converter is not in llama-cpp-python's wheel, only in its source distribution (which vendors
llama.cpp). We take it, with its `conversion/` package and the `gguf-py/` it was written for,
out of that file once into pricer's cache. The file is found in `$PRICER_LLAMA_CPP_SDIST`, in
the source tree's `.whl/` (`make setup` downloads it there), or downloaded with
`pip download --no-binary :all: llama-cpp-python==<installed version>`.

`export_gguf(merged_dir, out_path, gguf_type)`: F16, BF16 and Q8_0 are written by the converter;
Q4_K_M is the converter's F16 quantized by llama.cpp (`llama_model_quantize`). Each file is
written under a temporary name, then loaded by llama.cpp (model, tokenizer, one forward pass on
a prompt); only a file that passes is moved to `out_path`. Converter, quantizer and check run
in child processes: their logs stay out of the terminal, and a crash inside llama.cpp (an
abort) is an error line here, not the end of pricer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from pricer.errors import PricerError, reading
from pricer.paths import cache_dir

TYPES = ("f16", "bf16", "q8_0", "q4_k_m")
CONVERTED = ("f16", "bf16", "q8_0")  # what convert_hf_to_gguf.py writes itself
# transformers' model_type -> the families pricer exports (and tests: tests/test_gguf_families.py)
FAMILIES = {"llama": "Llama 3.1/3.2, SmolLM2 and other Llama-architecture models",
            "qwen2": "Qwen 2.5"}
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion", "gguf-py")
CHECK_PROMPT = "How much does this cost to the nearest dollar?\n\nSteel kettle\n\nPrice is $"
SDIST_ENV = "PRICER_LLAMA_CPP_SDIST"


def llama_cpp_version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        raise PricerError("GGUF export needs llama.cpp: pip install 'pricer[gguf]' "
                          "(llama-cpp-python, built from source in about 8 minutes)") from None


def sdist(progress=None) -> Path:
    """llama-cpp-python's source distribution, of the installed version."""
    version = llama_cpp_version()
    name = f"llama_cpp_python-{version}.tar.gz"
    if os.environ.get(SDIST_ENV):
        path = Path(os.environ[SDIST_ENV])
        if not path.is_file():
            raise PricerError(f"{SDIST_ENV}={path}: no such file")
        return path
    for place in (Path(__file__).resolve().parents[3] / ".whl", cache_dir() / "sdist"):
        if (place / name).is_file():
            return place / name
    target = cache_dir() / "sdist"
    (progress or (lambda m: None))(f"downloading llama-cpp-python {version} (source) for its converter")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                           "--no-binary", ":all:", f"llama-cpp-python=={version}", "-d", str(target)],
                          capture_output=True, text=True)
    if done.returncode != 0 or not (target / name).is_file():
        raise PricerError(f"cannot download llama-cpp-python=={version} (source), which holds "
                          f"llama.cpp's converter: {_last_line(done.stderr)}; or set {SDIST_ENV}")
    return target / name


def vendored(*paths: str, progress=None) -> Path:
    """The folder holding `paths` (relative to llama.cpp's root, files or folders) as vendored in
    the source distribution; taken out of it once into the cache."""
    root = cache_dir() / "llama.cpp" / llama_cpp_version()
    missing = [p for p in paths if not (root / p).exists()]
    if not missing:
        return root
    archive = sdist(progress)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as work:
        try:
            with reading(archive), tarfile.open(archive) as tar:
                prefix = tar.getnames()[0].split("/")[0] + "/vendor/llama.cpp/"
                members = [m for m in tar.getmembers() if any(
                    m.name == prefix + p or m.name.startswith(prefix + p + "/") for p in missing)]
                if not members:
                    raise PricerError(f"{archive}: holds no vendor/llama.cpp/{missing[0]}")
                for member in members:
                    member.name = member.name[len(prefix):]
                tar.extractall(work, members=members, **_tar_filter())
        except tarfile.TarError as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0].rstrip(":")
            raise PricerError(f"{archive}: not llama-cpp-python's source distribution ({reason})") from None
        for p in missing:  # moved into place whole: a half-extracted folder is never used
            (root / p).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(Path(work) / p, root / p)
            except OSError:
                if not (root / p).exists():  # else another pricer put it there first
                    raise
    return root


def converter(progress=None) -> Path:
    """Path of llama.cpp's convert_hf_to_gguf.py (its conversion/ and gguf-py/ beside it)."""
    return vendored(*CONVERTER_FILES, progress=progress) / "convert_hf_to_gguf.py"


def family(config_json: Path) -> str:
    """The model_type in a model's config.json if pricer exports it; else one line naming the
    families it does."""
    with reading(config_json):
        model_type = json.loads(Path(config_json).read_text()).get("model_type")
    if model_type not in FAMILIES:
        raise PricerError(f"GGUF export: model type '{model_type}' is not supported (supported: "
                          + "; ".join(f"{k} ({v})" for k, v in FAMILIES.items()) + ")")
    return model_type


def check_type(gguf_type: str) -> str:
    if gguf_type not in TYPES:
        raise PricerError(f"unknown GGUF type '{gguf_type}' (choose from {', '.join(TYPES)})")
    return gguf_type


def export_gguf(merged_dir: Path, out_path: Path, gguf_type: str, progress=None, *,
                f16_gguf: Path | None = None) -> Path:
    """Write the merged transformers folder `merged_dir` as the GGUF file `out_path` of type
    `gguf_type` (f16, bf16, q8_0, q4_k_m), checked by loading it in llama.cpp. On any failure
    nothing is left at `out_path` and a PricerError says why. `f16_gguf`: an F16 GGUF of the
    same folder, already written, that q4_k_m is quantized from instead of converting again."""
    say = progress or (lambda message: None)
    check_type(gguf_type)
    family(Path(merged_dir) / "config.json")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    script = converter(say)
    partial = out_path.with_name(out_path.name + ".partial")
    f16 = out_path.with_name(out_path.name + ".f16.partial")
    try:
        if gguf_type in CONVERTED:
            say(f"converting to GGUF {gguf_type} (llama.cpp's convert_hf_to_gguf.py)")
            _convert(script, merged_dir, partial, gguf_type)
        else:
            if f16_gguf is None:
                say("converting to GGUF f16 (llama.cpp's convert_hf_to_gguf.py)")
                _convert(script, merged_dir, f16, "f16")
            say(f"quantizing to {gguf_type} (llama.cpp's llama_model_quantize)")
            _child("quantize", f16_gguf or f16, partial, gguf_type)
        say(f"loading {out_path.name} in llama.cpp")
        _child("check", partial)
        os.replace(partial, out_path)
    finally:
        for leftover in (partial, f16):
            leftover.unlink(missing_ok=True)
    return out_path


def _convert(script: Path, merged_dir: Path, outfile: Path, outtype: str) -> None:
    done = subprocess.run([sys.executable, str(script), str(merged_dir), "--outtype", outtype,
                           "--outfile", str(outfile)], capture_output=True, text=True)
    if done.returncode != 0 or not outfile.is_file():
        raise PricerError(f"llama.cpp's converter failed on {merged_dir}: "
                          f"{_last_line(done.stderr + done.stdout)}")


def _child(command: str, *args) -> None:
    """Run `command` of this module's __main__ in a child process; its failure as one line."""
    done = subprocess.run([sys.executable, "-m", "pricer.export.llamacpp", command,
                           *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        what = {"quantize": "llama.cpp could not quantize", "check": "llama.cpp cannot load"}[command]
        raise PricerError(f"{what} {args[0]}: {_last_line(done.stderr + done.stdout)}")


def quantize(source: str, target: str, gguf_type: str) -> None:
    """llama.cpp's quantizer (as `llama-quantize SOURCE TARGET Q4_K_M`), in this process."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{gguf_type.upper()}")
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"llama_model_quantize failed on {source}")


def check(path: str) -> None:
    """Load `path` in llama.cpp, tokenize a prompt, run it: logits must be finite."""
    import math

    import llama_cpp

    try:
        llm = llama_cpp.Llama(model_path=path, n_ctx=128, n_batch=128, verbose=False)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    tokens = llm.tokenize(CHECK_PROMPT.encode(), add_bos=True, special=False)
    if not tokens or max(tokens) >= llm.n_vocab():
        raise SystemExit(f"bad tokenization of a prompt: {tokens}")
    llm.eval(tokens)
    if not all(math.isfinite(x) for x in llm.scores[len(tokens) - 1]):
        raise SystemExit("the logits of a prompt are not finite")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _tar_filter() -> dict:
    return {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


if __name__ == "__main__":  # the child processes of _child()
    {"quantize": quantize, "check": check}[sys.argv[1]](*sys.argv[2:])
