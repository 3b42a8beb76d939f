# devicegate: the two commands of the README quick start are `make demo` and `make test`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml scripts/system-deps.sh scripts/npm-deps.sh scripts/deps/*.txt tests/console/js/package-lock.json | sha1sum | cut -c1-12)

.PHONY: demo test lint typecheck unit system-deps venv clean bench

$(STAMP): pyproject.toml scripts/system-deps.sh scripts/npm-deps.sh $(wildcard scripts/deps/*.txt) tests/console/js/package-lock.json
	bash scripts/system-deps.sh
	bash scripts/npm-deps.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,postgres,triage,spark,console]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/apple-ban/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/decide.py
	$(BIN)/python benchmarks/identify.py
	$(BIN)/python benchmarks/forward_auth.py
	$(BIN)/python benchmarks/protocol_cost.py
	$(BIN)/python benchmarks/mail_policy.py
	$(BIN)/python benchmarks/decision_log.py
	$(BIN)/python benchmarks/triage.py
	$(BIN)/python benchmarks/audit.py
	$(BIN)/python benchmarks/audit_fallback.py
	$(BIN)/python benchmarks/audit_floors.py
	$(BIN)/python benchmarks/console.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
