# edgebench: `make setup` once, then `make test`. See README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MODEL     ?= mobilenet_v3
RUNTIME   ?= openvino
PRECISION ?= fp32
THREADS   ?= 2
DATA      ?= ../shared/data/imagenet-sample
WEIGHTS_DIR ?= ../shared/weights
export EDGEBENCH_WEIGHTS ?= $(abspath $(WEIGHTS_DIR))

.PHONY: setup test test-all export bench bench-accuracy bench-zoo lint clean

setup: $(BIN)/edgebench

$(BIN)/edgebench: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[cpu,dev]'
	@touch $@

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ''

export: setup
	$(BIN)/edgebench export $(MODEL) --precision $(PRECISION) --data $(DATA)

bench: setup
	$(BIN)/edgebench run --runtime $(RUNTIME) --model $(MODEL) --precision $(PRECISION) --threads $(THREADS) --data $(DATA)

lint: setup
	$(BIN)/ruff check edgebench tests

clean:
	rm -rf artifacts results .pytest_cache
