# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint format bench messages check clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

.env: | $(STAMP)
	$(PY) -m incidencias.envfile > .env.tmp && mv .env.tmp .env

run: install .env
	mkdir -p var
	$(PY) manage.py migrate --no-input
	$(PY) manage.py demo
	@echo ""
	@echo "Portal:  http://127.0.0.1:$${PORT:-8000}/admin/   API docs: http://127.0.0.1:$${PORT:-8000}/api/docs/"
	@echo "Stop everything with Ctrl-C."
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m incidencias.supervisor start -f Procfile

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: install
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

messages: install
	$(PY) manage.py makemessages -l es -l en --ignore=.venv --ignore=var
	$(PY) manage.py compilemessages --ignore=.venv

bench: install
	$(PY) bench/api.py
	$(PY) bench/sso.py
	$(PY) bench/auth.py
	$(PY) bench/ingest.py
	$(PY) bench/sla.py
	$(PY) bench/vault.py
	$(PY) bench/pages.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
