# One place for set-up. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PKGS := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libgl1 libegl1 \
	libfontconfig1 libdbus-1-3 libglib2.0-0 g++
# Every package of the venv, pip included, at the exact version of this lock (`make lock` refreshes it).
CONSTRAINTS := constraints.txt
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: setup system-deps lock test demo bench lint sample-data clean

setup: system-deps $(STAMP)

# Display libraries for napari/Qt under Xvfb, and g++ for torch.compile's CPU kernels: installed with apt
# when root, else listed.
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

# Everything through the lock: an upstream release cannot change what a fresh machine installs.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) $(TORCH_PINS) -e ".[test]"
	@touch $(STAMP)

# Refresh the lock: a temporary venv resolves `-e .[test]` (the openslide extra included) with only torch
# pinned, and its `pip freeze --all` (pip and setuptools included, the project itself left out) becomes
# constraints.txt.  Then `make clean test`: the suite tells whether the new set works; commit it only if green.
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp" $(CONSTRAINTS).new' EXIT; \
	echo "resolving in $$tmp/venv (a few minutes)"; \
	$(PY) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install -q --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install -q $(TORCH_PINS) -e ".[test]"; \
	{ echo "# The exact versions \`make setup\` installs (pip install -c $(CONSTRAINTS)); \`make lock\` refreshes them."; \
	  echo "# Resolved by \`make lock\` in a fresh venv: $(TORCH_PINS) -e .[test], Python $$("$$tmp/venv/bin/python" -V | cut -d' ' -f2)."; \
	  "$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable \
	    | grep -E '^[A-Za-z0-9._-]+==' | grep -viE '^napari[-_]mclstexp==' | LC_ALL=C sort -f; \
	} > $(CONSTRAINTS).new; \
	mv $(CONSTRAINTS).new $(CONSTRAINTS); \
	echo "wrote $(CONSTRAINTS) ($$(grep -vc '^#' $(CONSTRAINTS)) packages): now make clean test"

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
# suite's wall-clock assertions (`@pytest.mark.timing`, left out of make test) and the UI stalls in fresh
# processes (stalls) → JSON in benchmarks/results/.
# make bench PART=NAME [BENCH_ARGS=...]: one part, e.g. PART=gpu on a CUDA machine (< 5 min).
BENCH_ARGS ?=
PART ?=
bench: setup
ifeq ($(PART),)
	PYTHONUNBUFFERED=1 $(BIN)/python -m benchmarks cpu $(BENCH_ARGS)
	PYTHONUNBUFFERED=1 $(BIN)/python -m benchmarks region-read
	$(BIN)/python -m pytest -m timing -s
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
