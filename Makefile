# Overseer — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_VERSION ?= 4.1.1
JARS_STAMP := .cache/kafka-jars/$(KAFKA_VERSION)/.resolved
DEMO_ARGS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/.installed ## create .venv and install the project with its test extras

$(JARS_STAMP): streams/infra/kafka-pom.xml | $(BIN)/.installed
	$(BIN)/overseer kafka jars --version $(KAFKA_VERSION)

jars: $(JARS_STAMP) ## resolve the Apache Kafka broker jars through Maven into .cache/

deps: venv jars ## everything the demo and the tests need

demo: deps ## run the main job on the embedded default (pass DEMO_ARGS='--duration 30 --json')
	$(BIN)/overseer demo $(DEMO_ARGS)

test: deps ## the whole suite: schemas, rule packs, unit, then integration and fault tests
	$(BIN)/python -m schemas.export --check
	$(BIN)/overseer rules validate rules/packs
	$(BIN)/overseer rules test rules/packs
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)
	$(BIN)/pytest -q tests/browser $(PYTEST_ARGS)

test-unit: deps ## the fast tests only (no broker)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

schemas: venv ## regenerate schemas/json from the pydantic models
	$(BIN)/python -m schemas.export

clean: ## stop local Kafka and remove local state (keeps the jar cache)
	-$(BIN)/overseer kafka down
	rm -rf .overseer

.PHONY: help venv jars deps demo test test-unit schemas clean
