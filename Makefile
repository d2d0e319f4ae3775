# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench-parser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	exec $(BIN)/alertd run --data-dir ./data

test: $(STAMP)
	$(BIN)/python -m pytest

bench-parser: $(STAMP)
	$(BIN)/python -m bench.parser

clean:
	rm -rf $(VENV) data build *.egg-info .pytest_cache .hypothesis
