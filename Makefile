# One place for set-up. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PKGS := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libgl1 libegl1 \
	libfontconfig1 libdbus-1-3 libglib2.0-0
PYTEST_ARGS ?=

.PHONY: setup system-deps test demo bench lint sample-data clean

setup: system-deps $(STAMP)

# Display libraries for napari/Qt under Xvfb: installed with apt when root, else listed.
system-deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing display libraries:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "Missing system packages for the napari tests:$$missing"; \
	    echo "Install them with: sudo apt-get install$$missing"; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/python -m pip install -q torch torchvision
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	@if [ -n "$$DISPLAY" ] || [ -n "$$WAYLAND_DISPLAY" ]; then \
	  $(BIN)/python -m napari_mclstexp.cli demo --out mclstexp-demo --napari; \
	else \
	  $(BIN)/mclstexp demo --out mclstexp-demo; \
	fi

# Benchmarks: `python -m benchmarks` lists every part with the goal it measures (docs/benchmarks.md).
# make bench: the standing CPU parts — CPU speed figures (cpu), slide region reads (region-read), the
# timing tests and the UI stalls of issue 16 in fresh processes (stalls) → JSON in benchmarks/results/.
# make bench PART=NAME [BENCH_ARGS=...]: one part, e.g. PART=gpu on a CUDA machine (< 5 min).
BENCH_ARGS ?=
PART ?=
bench: setup
ifeq ($(PART),)
	PYTHONUNBUFFERED=1 $(BIN)/python -m benchmarks cpu $(BENCH_ARGS)
	PYTHONUNBUFFERED=1 $(BIN)/python -m benchmarks region-read
	$(BIN)/python -m pytest -m timing -s tests/_qt/test_fit_and_stalls.py
	PYTHONUNBUFFERED=1 xvfb-run -a $(BIN)/python -m benchmarks stalls
else
	PYTHONUNBUFFERED=1 $(BIN)/python -m benchmarks $(PART) $(BENCH_ARGS)
endif

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports

sample-data: setup
	$(BIN)/python scripts/make_sample_data.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
