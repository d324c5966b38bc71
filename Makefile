# The two commands of the README's Quickstart.
DEMO_DIR ?= /tmp/windl-demo
PYTEST_ARGS ?=
# executions per target of `make fuzz` (issue 22); the CI-sized run is tests/test_fuzz.py
FUZZ_RUNS ?= 1000000
FUZZ_TARGETS ?= dicom archive brainvision edf fif query

.PHONY: setup demo test lint bench fuzz

setup:
	ci/setup.sh

demo: setup
	.venv/bin/windl demo $(DEMO_DIR)

test: setup
	.venv/bin/ruff check windl tests benchmarks fuzz
	.venv/bin/pytest -n 2 --durations=40 $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check windl tests benchmarks fuzz

bench: setup
	.venv/bin/python benchmarks/bench_ingest_convert.py

# atheris on each recogniser and the query parser; stops at the first uncaught exception
# (its input is written to crash-*); corpora in /tmp/windl-fuzz-corpus/TARGET
fuzz: setup
	for t in $(FUZZ_TARGETS); do \
	  PYTHONPATH=$(CURDIR) .venv/bin/python fuzz/run.py $$t -runs=$(FUZZ_RUNS) \
	    -print_final_stats=1 || exit 1; \
	done
