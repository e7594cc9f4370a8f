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

.PHONY: demo demo-rings demo-joint demo-lcdm test bench bench-quick docs clean

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

# The cobaya model with camb: the enhanced run against cobaya's MCMC (about 15 minutes; --quick: seconds).
demo-lcdm: $(STAMP)
	$(PY) demos/cobaya_lcdm.py

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q

# Every benchmark script at its default arguments, one at a time, one thread
# each (about 40 minutes on a 2-core x86_64; table1.py takes 18 of them).
# The defaults give a first look; each table in benchmarks/RESULTS.md names
# the command (seeds, settings) that reproduces it.
BENCH := OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY)

bench: $(STAMP)
	$(BENCH) benchmarks/latency.py
	$(BENCH) benchmarks/fit_time.py
	$(BENCH) benchmarks/table1.py
	$(BENCH) benchmarks/marginal.py
	$(BENCH) benchmarks/planck.py
	$(BENCH) benchmarks/multimodal.py
	$(BENCH) benchmarks/banana.py
	$(BENCH) benchmarks/banana.py --target student
	$(BENCH) benchmarks/widen.py
	$(BENCH) benchmarks/reweighting.py
	$(BENCH) benchmarks/reweighting.py --case bimodal
	$(BENCH) benchmarks/faults.py
	$(BENCH) benchmarks/scaling.py

# Each benchmark once at its cheapest settings (a few minutes): do the scripts still run?
bench-quick: $(STAMP)
	$(BENCH) benchmarks/latency.py
	$(BENCH) benchmarks/fit_time.py --seeds 1
	$(BENCH) benchmarks/table1.py --repeats 1 --targets RingMixture
	$(BENCH) benchmarks/marginal.py --dims 2 --seeds 1
	$(BENCH) benchmarks/planck.py --no-plain --nlive-low 25
	$(BENCH) benchmarks/multimodal.py --seeds 1 --no-plain
	$(BENCH) benchmarks/banana.py --seeds 1 --no-plain --mc 0
	$(BENCH) benchmarks/banana.py --target student --seeds 1 --no-plain
	$(BENCH) benchmarks/widen.py --scales 1.8
	$(BENCH) benchmarks/reweighting.py --seeds 1
	$(BENCH) benchmarks/reweighting.py --case bimodal --seeds 1
	$(BENCH) benchmarks/faults.py
	$(BENCH) benchmarks/scaling.py --dims 12 --no-plain

# The documentation site (mkdocs + mkdocstrings; pages in docs/, settings in
# mkdocs.yml) built into site/, every warning an error.
DOCS_STAMP := $(VENV)/.flowprior-docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build *.egg-info
