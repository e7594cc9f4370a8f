# Set-up and entry points.  `make demo` and `make test` create .venv and
# install everything on a fresh machine.
#
# TORCH is the pip requirement used for PyTorch.  The default lets pip pick a
# build for your platform; CI (and machines with a local CPU wheel) pass
# TORCH=torch==2.13.0 to get the CPU build instead of a multi-GB CUDA one.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flowprior-installed

.PHONY: demo demo-rings demo-joint test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $(STAMP)

# The main demo: plain vs enhanced nested sampling on the Planck-like Gaussian.
demo: $(STAMP)
	MPLBACKEND=Agg $(PY) demos/planck.py

# MAF vs piecewise flow on the two-rings target (KL, fit time, samples PNG).
demo-rings: $(STAMP)
	MPLBACKEND=Agg $(PY) demos/two_rings.py

# Full vs nuisance-free joint analysis of two Gaussian experiments (closed-form truth).
demo-joint: $(STAMP)
	$(PY) demos/joint.py

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/latency.py
	$(PY) benchmarks/fit_time.py
	$(PY) benchmarks/table1.py

clean:
	rm -rf $(VENV) build *.egg-info
