# Two entry points (see README): `make demo` and `make test`. Both install what they need first.
#   TORCH=        the torch requirement installed before the package (CPU build by default;
#                 empty to keep a CUDA build you installed yourself: make demo TORCH=)
#   CORES=        cores for the demo workflow

VENV   ?= .venv
PYTHON ?= python3
TORCH  ?= torch==2.13.0
CORES  ?= 2
BIN    := $(CURDIR)/$(VENV)/bin

.PHONY: install services demo test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH),$(BIN)/pip install --quiet "$(TORCH)")
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: install
	PATH="$(BIN):$$PATH" snakemake --profile profiles/local --cores $(CORES)

services:
	bash scripts/install-services.sh

test: install services
	PATH="$(BIN):$$PATH" python -m pytest

clean:
	rm -rf results .snakemake
