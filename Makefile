# The two commands of the README: `make demo` and `make test`. Everything installs into .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build by default (the wheel on this kind of machine). For GPUs see README "Installing on a GPU machine".
TORCH_SPEC ?= torch==2.13.0
CORES ?= 2

.PHONY: install demo test status clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[demo,dev]"
	touch $@

# On a CPU-only machine the "GPU" jobs are CPU jobs: let as many run side by side as there are cores.
demo: install
	$(VENV)/bin/snakemake --cores $(CORES) --resources gpu=$(CORES) --configfile config/demo.yaml
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/demo.yaml --report results/report/report.html
	@echo; echo "Report: $(CURDIR)/results/report/report.html"; echo; cat results/report/summary.txt

# Where a run stands (done / failed / incomplete / missing per stage and base model, and the time left
# from the finished jobs' benchmark files; JOBS=N: N jobs at once); runs nothing.
status: install
	$(PY) -m ptmbench.cli.status --configfile $(or $(CONFIG),config/config.yaml) $(if $(JOBS),--jobs $(JOBS))

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/snakefmt --check .
	$(VENV)/bin/snakemake --lint --configfile config/demo.yaml
	$(VENV)/bin/pytest -q -n 2

clean-demo:
	rm -rf results resources/models resources/data logs benchmarks .snakemake
