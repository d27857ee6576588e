# Two commands set everything up on a fresh machine: `make run` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# headless runs print plain-text progress instead of widgets
export HELPERS_PROGRESS ?= text

.PHONY: setup run test unit lab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Execute every notebook top to bottom, write outputs back in place, print the results table.
run: setup
	cd notebooks && for nb in $(notdir $(NOTEBOOKS)); do \
	  echo "=== $$nb"; \
	  ../$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.record_timing=False "$$nb" || exit 1; \
	done
	$(PY) -m helpers.results

# Unit tests of helpers, then nbval over every notebook, in one pytest run.
test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests $(NOTEBOOKS) $(NBVAL)

unit: setup
	$(PY) -m pytest -q tests

lab: setup
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf runs .pytest_cache
