# Two commands set everything up on a fresh machine: `make run` and `make test` (see README).
VENV ?= .venv
# the interpreter that creates $(VENV), e.g. make setup PYTHON=python3.12 (tools/check_python.py checks it first)
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
SMOKE_DIR := runs/smoke

.PHONY: setup run test test-canonical standin smoke unit lab lab-check times clean

# Headless runs store no progress bars (one table row per epoch is their record). Only these targets turn them
# off, so that `make lab`'s kernels (and lab-check's) keep a learner's live bars. A user's own HELPERS_PROGRESS wins.
run test test-canonical standin smoke times unit: export HELPERS_PROGRESS ?= none
# The committed outputs are the small profile's: run and test give it on any machine, CUDA included.
run test test-canonical standin: export HELPERS_PROFILE = small

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@# a Python too old, or without its venv module, stops here in one line, before pip starts
	@if [ -x $(PY) ]; then $(PY) tools/check_python.py; else $(PYTHON) tools/check_python.py; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	@# pip byte-compiles on one core; compileall uses all of them. Without .pyc files every process
	@# compiles what it imports (torch: ~12 s per kernel) when PYTHONDONTWRITEBYTECODE is set (it is on this machine).
	$(PY) -m compileall -q -j 0 -x '/(tests|testing/_internal)/' $(VENV)/lib \
	  || echo "compileall: the files above did not compile; Python compiles them when imported"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Execute every notebook top to bottom in the small profile, write outputs back in place (each cell's printed
# lines merged into one output), print the results table. A notebook that fails keeps its stored outputs; the
# others still run, and the table (with each notebook's checks row) is printed before make fails.
run: setup
	$(PY) -c "from helpers import config; [p.unlink() for p in config.runs_dir().glob('*.json')]"
	@failed=""; jupyter="$$(cd "$(VENV)" && pwd)/bin/jupyter"; cd notebooks && for nb in $(notdir $(NOTEBOOKS)); do \
	  echo "=== $$nb"; \
	  if "$$jupyter" nbconvert --to notebook --execute --inplace \
	      --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.record_timing=False "$$nb"; then \
	    "$$jupyter" nbconvert --to notebook --inplace --log-level=WARN \
	      --CoalesceStreamsPreprocessor.enabled=True "$$nb" || exit 1; \
	  else failed="$$failed $$nb"; fi; \
	done; \
	cd .. && $(PY) -m helpers.results; status=$$?; \
	if [ -n "$$failed" ]; then echo "failed (stored outputs left as they were):$$failed" >&2; exit 1; fi; \
	exit $$status

# Unit tests of helpers, then nbval over every notebook (small profile), in one pytest run; then test-canonical.
test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests $(NOTEBOOKS) $(NBVAL)
	$(MAKE) --no-print-directory test-canonical

# The path a learner with internet takes: nbval over 05 and 07 on archives shaped like the canonical downloads, made
# from the mirror's samples (tools/canonical_mirror.py: more photos, annotations/, a .mat file, CMYK, gray and RGBA
# photos, a truncated JPEG, a 3,200-px photograph), in a data folder of their own, extracted afresh from the archives
# just built; the checked outputs are the same.
CANONICAL := runs/canonical
CANONICAL_NOTEBOOKS ?= notebooks/05_superres.ipynb notebooks/07_deoldify.ipynb
test-canonical: setup
	$(PY) tools/canonical_mirror.py "$(CANONICAL)/mirror"
	rm -rf "$(CANONICAL)/data"
	HELPERS_MIRROR="file://$(CURDIR)/$(CANONICAL)/mirror" HELPERS_DATA="$(CURDIR)/$(CANONICAL)/data" \
	  HELPERS_RUNS="$(CURDIR)/$(CANONICAL)/runs" $(PY) -m pytest -q -p no:cacheprovider $(CANONICAL_NOTEBOOKS) $(NBVAL)

# The ImageNet-weights path on stand-ins (tools/standin_weights.py): notebooks $(STANDIN) in the small profile with
# weight files of torchvision's names and random values, served by a mirror beside the dataset archives
# (STANDIN_DATASETS), kept out of the real torch cache; floors reported, not enforced; every cell timed, executed
# copies in runs/standin/. Its data folder (saved models included) is its own, with links to the datasets already
# extracted in data/. CI runs it on 05 alone: make standin STANDIN=05
STANDIN ?= 02 03 05 07
STANDIN_DIR := runs/standin
STANDIN_DATASETS ?= $(wildcard ../shared/datasets)
standin: setup
	$(PY) tools/standin_weights.py "$(STANDIN_DIR)/mirror" $(if $(STANDIN_DATASETS),--datasets "$(STANDIN_DATASETS)")
	mkdir -p "$(STANDIN_DIR)/data" && for d in data/*/; do case "$$d" in data/models/|data/archives/) ;; \
	  *) ln -sfn "$(CURDIR)/$${d%/}" "$(STANDIN_DIR)/data/" ;; esac; done
	HELPERS_MIRROR="file://$(CURDIR)/$(STANDIN_DIR)/mirror" TORCH_HOME="$(CURDIR)/$(STANDIN_DIR)/torch" \
	  HELPERS_DATA="$(CURDIR)/$(STANDIN_DIR)/data" HELPERS_FLOORS=report HELPERS_RUNS="$(CURDIR)/$(STANDIN_DIR)" \
	  $(PY) benchmarks/notebook_times.py $(foreach n,$(STANDIN),notebooks/$(n)_*.ipynb) --profile small \
	  --out "$(STANDIN_DIR)"
	HELPERS_RUNS="$(CURDIR)/$(STANDIN_DIR)" $(PY) -m helpers.results

# Dry run of the full profile on any machine: every notebook, 2 batches per loader, 1 epoch per fit,
# random init allowed, floors reported but not enforced, each cell timed (benchmarks/notebook_times.py).
# Executed copies and timings go to runs/smoke/, so the committed notebooks keep their small-profile outputs.
smoke: setup
	$(PY) benchmarks/notebook_times.py $(NOTEBOOKS) --profile full --smoke --out $(SMOKE_DIR)
	HELPERS_RUNS=$(abspath $(SMOKE_DIR)) $(PY) -m helpers.results

# Per-cell seconds and peak GPU memory of every notebook in a chosen profile: make times PROFILE=full
PROFILE ?= small
times: setup
	$(PY) benchmarks/notebook_times.py $(NOTEBOOKS) --profile $(PROFILE) --out runs/times-$(PROFILE)

# JupyterLab in headless Chromium (Debian's chromium and chromium-driver): run notebook 06 as a learner
# would, save, reopen, and check the bars, widgets, console and outputs (tools/lab_check.py);
# make lab-check LAB_CHECK=--smoke runs it as a smoke run, as CI does
LAB_CHECK ?=
lab-check: setup
	$(PY) tools/lab_check.py $(LAB_CHECK)

unit: setup
	$(PY) -m pytest -q tests

# JupyterLab refuses to start as root (containers, cloud GPUs) unless told --allow-root
lab: setup
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

clean:
	rm -rf runs .pytest_cache
