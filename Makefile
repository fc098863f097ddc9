# Two entry points (see README): `make demo` and `make test`. Both install what they need first.
#   TORCH=        the torch requirement installed before the package (CPU build by default;
#                 empty to keep a CUDA build you installed yourself: make demo TORCH=)
#   CORES=        cores for the demo workflow

VENV   ?= .venv
PYTHON ?= python3
TORCH  ?= torch==2.13.0
CORES  ?= 2
BIN    := $(CURDIR)/$(VENV)/bin

.PHONY: install install-test services demo test clean

# the package with the SLURM executor plugin; the tests add pytest and the HTCondor plugin (whose
# bindings warn on every snakemake start where no condor_config exists, as on this machine)
install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH),$(BIN)/pip install --quiet "$(TORCH)")
	$(BIN)/pip install --quiet -e ".[slurm]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: install
	PATH="$(BIN):$$PATH" snakemake --profile profiles/local --cores $(CORES) all thesis_plots

services:
	bash scripts/install-services.sh

test: install-test services
	PATH="$(BIN):$$PATH" python -m pytest

clean:
	rm -rf results .snakemake
