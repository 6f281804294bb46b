# privguard: the two set-up commands are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_OUT := demo-out

.PHONY: venv demo test test-fast test-nightly test-gpu bench lint typecheck standard clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "privguard needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all]'
	touch $(STAMP)

## Scrub the synthetic sample set shipped in examples/sample and print a summary.
demo: venv
	$(BIN)/python examples/demo.py --out $(DEMO_OUT)

## The whole test suite (CPU). dciodvfy-based checks run where dicom3tools is installed.
test: venv
	$(BIN)/python -m pytest -q -m "not gpu and not nightly" -n 2

## Long fuzzing runs of the header engine (thousands of mutants).
test-nightly: venv
	$(BIN)/python -m pytest -q -m nightly -n 2

test-fast: venv
	$(BIN)/python -m pytest -q -m "not gpu and not slow and not nightly" -n 2

## Tests that need CUDA (run on a machine with a GPU).
test-gpu: venv
	$(BIN)/python -m pytest -q -m gpu

bench: venv
	$(BIN)/python benchmarks/header_throughput.py

lint: venv
	$(BIN)/ruff check privguard cli tests benchmarks tools

typecheck: venv
	$(BIN)/mypy

## Regenerate privguard/header/_standard from ../shared/reference (development only).
standard: venv
	$(BIN)/python -m pip install -q 'highdicom>=0.22'
	$(BIN)/python tools/gen_standard.py --reference ../shared/reference

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
