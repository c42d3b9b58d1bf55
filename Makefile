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

.PHONY: setup setup-executorch test check test-all lint-imports export bench bench-fp32 bench-accuracy bench-zoo bench-gate bench-report bench-int8-recipes lint clean

setup: $(BIN)/edgebench

$(BIN)/edgebench: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[cpu,dev]'
	@touch $@

# ExecuTorch is not in `make setup`: it adds ~40 s of install and minutes of XNNPACK lowering to `make test`
# (tests/test_executorch.py, skipped with the reason without it). Its wheel is built against one torch.
setup-executorch: setup  ## ExecuTorch (XNNPACK) and torchao for `--runtime executorch`
	$(BIN)/pip install --quiet -c constraints.txt -e '.[cpu,dev,executorch]'

# The whole suite, as CI runs it; the layer contracts are one of its tests (tests/test_architecture.py).
test: setup
	$(BIN)/python -m pytest -q

# The inner loop: unit, property and refusal tests, and one real-engine smoke test per path.
# What it leaves to `make test`: pytest -m 'integration and not smoke or system' --collect-only.
CHECK_MARKS := (not slow and not integration and not system) or smoke
check: setup
	$(BIN)/python -m pytest -q -m '$(CHECK_MARKS)'

lint-imports: setup  ## the layer contracts (pyproject.toml [tool.importlinter])
	$(BIN)/lint-imports pyproject.toml --no-cache

test-all: setup
	$(BIN)/python -m pytest -q -m ''

export: setup
	$(BIN)/edgebench export $(MODEL) --precision $(PRECISION) --data $(DATA)

bench: setup
	$(BIN)/edgebench run --runtime $(RUNTIME) --model $(MODEL) --precision $(PRECISION) --threads $(THREADS) --data $(DATA)

bench-fp32: setup  ## the FP32 table of the foundation models + the benchmark_app cross-check
	$(BIN)/edgebench sweep --models mobilenet_v3_large,efficientnet_b0,shufflenet_v2_x1_0,resnet50,deit_tiny,swin_t \
		--runtimes ort,openvino --precisions fp32 --threads $(THREADS) --results results/fp32.jsonl
	$(BIN)/edgebench crosscheck mobilenet_v3_large --results results/fp32.jsonl
	$(BIN)/edgebench crosscheck resnet50 --results results/fp32.jsonl

ZOO_CALIBRATION ?= 100
ZOO_FAMILIES ?= mobile-cnn transformer hybrid mlp cnn
bench-zoo: setup  ## every registry model, FP32 and INT8 on ORT and OpenVINO, one table grouped by family
	time sh -c 'for f in $(ZOO_FAMILIES); do $(BIN)/edgebench sweep --family $$f --runtimes ort,openvino \
		--precisions fp32,int8 --threads $(THREADS) --min-seconds 3 --num $(ZOO_CALIBRATION) --accuracy-images 100 \
		--data $(DATA) --results results/zoo.jsonl > /dev/null; done'
	$(BIN)/edgebench report --results results/zoo.jsonl

ACCURACY_MODELS ?= tf_efficientnet_lite0 tf_efficientnet_lite1 tf_efficientnet_lite2 squeezenet1_1 mobilenet_v2
MAX_DROP ?=
bench-int8-recipes: setup  ## every ORT recipe and NNCF overflow_fix on the five real-weight models: drop, agreement, paired speed-up
	EDGEBENCH_DATA=$(abspath $(DATA)) $(BIN)/python tools/bench_int8_recipes.py $(ACCURACY_MODELS)

bench-accuracy: setup  ## INT8 vs FP32: accuracy on the evaluation split + latency, ORT and OpenVINO, one table (MAX_DROP=0.5: accuracy-aware)
	@for m in $(ACCURACY_MODELS); do for rt in ort openvino; do \
		$(BIN)/edgebench run --runtime $$rt --model $$m --precision int8 --accuracy --threads $(THREADS) --batch 1 \
			--min-seconds 3 $(if $(MAX_DROP),--max-drop $(MAX_DROP)) --data $(DATA) --results results/accuracy.jsonl \
			> /dev/null || exit 1; \
	done; done
	$(BIN)/python -m edgebench.results.accuracy_table results/accuracy.jsonl

GATE_AA ?= 20
GATE_POWER ?= 10
bench-gate: setup  ## gate evidence: A/A false alarms, power at +-10%, cost of one gate, in-loop detector (flock'ed)
	AA=$(GATE_AA) POWER=$(GATE_POWER) OUT=results/bench-gate EDGEBENCH_DATA=$(abspath $(DATA)) \
		$(BIN)/python tools/bench_gate.py

REPORT_MODELS ?= mobilenet_v3_large,mobilenet_v2,efficientnet_b0,tf_efficientnet_lite0,shufflenet_v2_x1_0,squeezenet1_1,resnet50,deit_tiny,swin_t,conformer_ti
REPORT_SECONDS ?= 3
REPORT_IMAGES ?= 100
REPORT_RESULTS ?= results/report.jsonl
# ort,openvino,executorch after `make setup-executorch`
REPORT_RUNTIMES ?= ort,openvino
bench-report: setup  ## mobile CNNs vs ViT/Swin: FP32 + INT8 on ORT and OpenVINO (REPORT_RUNTIMES) with --profile and accuracy, then the HTML report
	time $(BIN)/edgebench sweep --models $(REPORT_MODELS) --runtimes $(REPORT_RUNTIMES) --precisions fp32,int8 --profile \
		--threads $(THREADS) --min-seconds $(REPORT_SECONDS) --num $(ZOO_CALIBRATION) --accuracy-images $(REPORT_IMAGES) \
		--data $(DATA) --results $(REPORT_RESULTS) > /dev/null
	$(BIN)/edgebench report --results $(REPORT_RESULTS) --threads $(THREADS) --measure-peak \
		--html results/report.html --plots results/plots

lint: setup
	$(BIN)/ruff check edgebench tests
	$(BIN)/lint-imports pyproject.toml --no-cache

clean:
	rm -rf artifacts results .pytest_cache
