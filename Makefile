# The two README commands: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
VENV ?= .venv
export PATH := $(abspath $(VENV))/bin:$(PATH)
export ANSIBLE_CONFIG := $(abspath ansible.cfg)
PYTEST_ARGS ?=

.PHONY: setup demo test lint unit lab-down clean

setup:
	@./scripts/setup.sh

demo: setup
	@./scripts/demo.sh

test: setup
	@./scripts/test.sh $(PYTEST_ARGS)

lint: setup
	ruff check .
	mypy
	ansible-lint --offline playbooks collections

unit: setup
	pytest -q tests/unit tests/property

lab-down: setup
	irm lab down --inventory inventories/lab

clean: lab-down
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
