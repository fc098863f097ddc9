# Two entry points (see README): `make demo` and `make test`. Both install what they need first.
#   TORCH=        the torch requirement installed before the package (CPU build by default;
#                 empty to keep a CUDA build you installed yourself: make demo TORCH=)
#   CORES=        cores for the demo workflow

VENV   ?= .venv
PYTHON ?= python3
TORCH  ?= torch==2.13.0
CORES  ?= 2
BIN    := $(CURDIR)/$(VENV)/bin

.PHONY: install install-test profiles services demo test lint clean

# the package with the SLURM and HTCondor executor plugins and coffea (the analysis examples) (the HTCondor bindings warn at every snakemake start
# where no condor_config exists, as on this machine: the demo says there is none); the tests add pytest & co.
install: $(VENV)/.installed profiles
install-test: $(VENV)/.installed-test profiles

# `snakemake --profile local|slurm|htcondor` as typed: this checkout's profiles linked where Snakemake looks
# (~/.config/snakemake; a profile of yours with the same name is kept)
profiles:
	@sh scripts/link-profiles.sh

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH),$(BIN)/pip install --quiet "$(TORCH)")
	$(BIN)/pip install --quiet -e ".[slurm,htcondor,demo,analysis]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: install
	PATH="$(BIN):$$PATH" CONDOR_CONFIG="$${CONDOR_CONFIG:-/dev/null}" \
		snakemake --profile profiles/local --cores $(CORES) all thesis_plots

services:
	bash scripts/install-services.sh

# the tests, after the lint: ruff with the project's settings, the schema's generated parts current, and
# snakemake --lint over the demo and the thesis configurations
test: install-test services lint
	PATH="$(BIN):$$PATH" python -m pytest

lint: install-test
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/python -m gnnjec.config --check-schema
	@for config in config/config.yaml config/thesis.yaml; do \
		dir=$$(mktemp -d) && \
		PATH="$(BIN):$$PATH" CONDOR_CONFIG=/dev/null snakemake --lint --snakefile workflow/Snakefile \
			--configfile $$config --directory $$dir > $$dir/lint.log 2>&1 \
			|| { cat $$dir/lint.log; echo "snakemake --lint: $$config: see above"; exit 1; }; \
		echo "snakemake --lint: $$config: clean"; rm -rf $$dir; \
	done

clean:
	rm -rf results .snakemake
