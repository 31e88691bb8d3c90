# Two set-up commands: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-unit test-integration lock clean images

venv: $(STAMP)

# Everything comes from the project's own files: pyproject.toml (direct pins) and
# requirements.lock (the whole resolved set, used as constraints).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $(STAMP)

demo: venv
	$(PY) -m cqo.cli demo

test: venv
	$(PY) -m pytest -q

test-unit: venv
	$(PY) -m pytest -q tests/unit

test-integration: venv
	$(PY) -m pytest -q tests/integration tests/e2e

# The stack's images (localhost/cqo-app, -rabbitmq, -postgres) with podman (or
# ENGINE=docker); makes the Debian base first when it is missing, reuses the layer cache.
images:
	containers/images.sh

# Re-resolve the lock from pyproject.toml in a scratch environment.
lock:
	rm -rf /tmp/cqo-lock-venv && $(PYTHON) -m venv /tmp/cqo-lock-venv
	/tmp/cqo-lock-venv/bin/pip install --quiet "pip==26.3" && /tmp/cqo-lock-venv/bin/pip install --quiet ".[test]"
	/tmp/cqo-lock-venv/bin/pip freeze --all --exclude cqo --exclude pip | sort -f > requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
