# The two commands a new user needs: `make demo` (set up + main job) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# loadgroup: tests sharing an xdist_group (and their subprocess fixtures) run in one worker.
XDIST := -n 2 --dist loadgroup

.PHONY: demo test test-all bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m experiments.reproduce --quick --outdir=runs/reproduce

test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(XDIST) -q

test-all: $(STAMP)
	$(PY) -m pytest $(XDIST) -q

bench: $(STAMP)
	$(PY) -m benchmarks.engine
	$(PY) -m benchmarks.ebt_step
	$(PY) -m benchmarks.scaling
	$(PY) -m benchmarks.microbatch
	$(PY) -m benchmarks.sinkhorn

clean:
	rm -rf $(VENV) runs .pytest_cache
