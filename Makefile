# netgis: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SAMPLE ?= data/sample.gpkg
HOST ?= 127.0.0.1
PORT ?= 8000
# the demo server's write key (scripts/demo-key.sh makes it once, then reuses it)
DEMO_KEY_FILE ?= .netgis-demo-key

.PHONY: demo test doctest bench lint sysdeps venv postgres clean

sysdeps:
	./scripts/install-system.sh

$(VENV)/.installed: pyproject.toml
	$(MAKE) sysdeps
	test -x $(PY) || /usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: sysdeps $(VENV)/.installed

postgres:
	./scripts/ensure-postgres.sh

demo: venv
	$(BIN)/netgis analyze $(SAMPLE) --out netgis-out
	NETGIS_DATABASE_URL=sqlite:///./netgis.db $(BIN)/netgis db init > /dev/null
	NETGIS_DATABASE_URL=sqlite:///./netgis.db $(BIN)/netgis db load $(SAMPLE) --mode replace
	@echo "Serving on http://$(HOST):$(PORT)/ (Ctrl-C stops): /collections /docs /analysis/coverage /health"
	@echo "Dashboard: http://$(HOST):$(PORT)/dashboard  report: http://$(HOST):$(PORT)/report"
	@echo "Maps: http://$(HOST):$(PORT)/maps/coverage http://$(HOST):$(PORT)/maps/criticality http://$(HOST):$(PORT)/maps/gaps http://$(HOST):$(PORT)/maps/areas"
	@key="$$(./scripts/demo-key.sh $(DEMO_KEY_FILE))"; \
	echo "write key: $$key (send as X-API-Key; kept in $(DEMO_KEY_FILE))"; \
	NETGIS_API_KEYS="$$key" NETGIS_DATABASE_URL=sqlite:///./netgis.db \
	  $(BIN)/netgis serve --host $(HOST) --port $(PORT)

lint: venv
	$(BIN)/ruff check netgis api maps tests benchmarks
	$(BIN)/mypy

# three pytest workers (pytest-xdist): the suite waits on servers, browsers and
# subprocesses much of the time, so even on 2 cores this about halves its wall time.
# Tests spread one by one; a module marked xdist_group keeps its costly fixture on one worker.
test: venv postgres lint doctest
	$(BIN)/pytest -n 3 --dist loadgroup

# the examples in the docstrings: pytest reaches netgis/api and netgis/maps through their
# links, so every module is collected once under its netgis.* name; migrations/env.py
# runs only inside Alembic
doctest: venv
	$(BIN)/pytest --doctest-modules netgis --ignore=netgis/storage/migrations/env.py

bench: venv postgres
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) netgis-out .pytest_cache .mypy_cache .ruff_cache
