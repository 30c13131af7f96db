# Every target sets up its own virtual environment first (Python 3.11+, nothing else needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The Ocean compatibility suite (tests/compat) runs unmodified port-ocean, which needs Python >= 3.12,
# in a venv of its own. PYTHON_OCEAN: the first such interpreter found (pyenv's shims refuse versions
# pyenv has not selected, so its install folders are tried too); set it to choose another.
OCEAN_VERSION := 0.56.2
OCEAN_VENV := .venv-ocean
OCEAN_STAMP := $(OCEAN_VENV)/.installed-$(OCEAN_VERSION)
OCEAN_PINS := compat/ocean-constraints.txt
PYTHON_OCEAN ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) \
	python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo "$$p"; break; }; \
	done)

.PHONY: demo test lint typecheck unit compat test-compat compat-pins bench bench-quick clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shoal demo

test: lint typecheck unit test-compat

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

unit: $(STAMP)
	$(BIN)/pytest -m "not compat"

$(OCEAN_STAMP): $(OCEAN_PINS)
	@test -n "$(PYTHON_OCEAN)" || { echo "the Ocean venv needs Python >= 3.12: set PYTHON_OCEAN"; exit 1; }
	rm -rf $(OCEAN_VENV)
	$(PYTHON_OCEAN) -m venv $(OCEAN_VENV)
	$(OCEAN_VENV)/bin/pip install --quiet --disable-pip-version-check -c $(OCEAN_PINS) \
		'port-ocean[cli]==$(OCEAN_VERSION)'
	touch $@

# Unmodified Port Ocean integrations (tests/compat/ocean_integration) syncing into the catalog.
compat: $(STAMP) $(OCEAN_STAMP)
	$(BIN)/pytest -m compat tests/compat

# `make test` runs the compat suite where Python >= 3.12 exists, and says so where it does not.
test-compat:
	@if [ -n "$(PYTHON_OCEAN)" ]; then \
		$(MAKE) --no-print-directory compat PYTHON_OCEAN="$(PYTHON_OCEAN)"; \
	else \
		echo "SKIPPED the Ocean compatibility suite (make compat): no Python >= 3.12 found;" \
			"install one or set PYTHON_OCEAN=/path/to/python3.12"; \
	fi

# Re-resolve the Ocean venv's pins (after changing OCEAN_VERSION), then run `make compat`.
compat-pins:
	@test -n "$(PYTHON_OCEAN)" || { echo "needs Python >= 3.12: set PYTHON_OCEAN"; exit 1; }
	rm -rf $(OCEAN_VENV)
	$(PYTHON_OCEAN) -m venv $(OCEAN_VENV)
	$(OCEAN_VENV)/bin/pip install --quiet --disable-pip-version-check 'port-ocean[cli]==$(OCEAN_VERSION)'
	{ sed -n '/^#/p' $(OCEAN_PINS); $(OCEAN_VENV)/bin/pip freeze --disable-pip-version-check; } \
		> $(OCEAN_PINS).new && mv $(OCEAN_PINS).new $(OCEAN_PINS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) $(OCEAN_VENV) shoal-data .pytest_cache .mypy_cache .ruff_cache
