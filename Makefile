# devicegate: the two commands of the README quick start are `make demo` and `make test`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml scripts/system-deps.sh scripts/npm-deps.sh scripts/deps/*.txt tests/console/js/package-lock.json | sha1sum | cut -c1-12)

.PHONY: demo test lint typecheck unit compat system-deps venv clean bench mutate soak fuzz

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

test: lint typecheck unit compat

# server/protocol.py subclasses uvicorn's httptools protocol: its tests also run on the oldest
# uvicorn pyproject.toml admits (the newest is what the venv installs).
UVICORN_OLDEST := $(shell sed -n 's/.*"uvicorn>=\([0-9.]*\),.*/\1/p' pyproject.toml)
COMPAT := $(VENV)/compat/uvicorn-$(UVICORN_OLDEST)

$(COMPAT)/.installed: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps --target $(COMPAT) uvicorn==$(UVICORN_OLDEST)
	touch $@

compat: $(COMPAT)/.installed
	PYTHONPATH=$(COMPAT) $(BIN)/python -c "import uvicorn; assert uvicorn.__version__ == '$(UVICORN_OLDEST)', uvicorn.__version__"
	PYTHONPATH=$(COMPAT) $(BIN)/python -m pytest -q -p no:cacheprovider tests/server/test_protocol.py tests/security/test_limits.py

# The last, benchmarks/scale.py (one and two serve on PostgreSQL under a realistic population,
# docs/scale.md), takes about 17 minutes on 2 cores.
bench: $(STAMP)
	$(BIN)/python benchmarks/decide.py
	$(BIN)/python benchmarks/identify.py
	$(BIN)/python benchmarks/forward_auth.py
	$(BIN)/python benchmarks/protocol_cost.py
	$(BIN)/python benchmarks/mail_policy.py
	$(BIN)/python benchmarks/mail_instructions.py
	$(BIN)/python benchmarks/decision_log.py
	$(BIN)/python benchmarks/triage.py
	$(BIN)/python benchmarks/audit.py
	$(BIN)/python benchmarks/audit_fallback.py
	$(BIN)/python benchmarks/audit_floors.py
	$(BIN)/python benchmarks/sources.py
	$(BIN)/python benchmarks/console.py
	$(BIN)/python benchmarks/scale.py

# Reliability (docs/reliability.md): `make test` runs short forms of both.
# The fuzz campaign: 100,000 generated inputs a parser (FUZZ_EXAMPLES to change it).
FUZZ_EXAMPLES ?= 100000
fuzz: $(STAMP)
	mkdir -p build
	DEVICEGATE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) DEVICEGATE_FUZZ_REPORT=build/fuzz.json \
		nice -n 10 $(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz

# The soak: a million mixed requests through one serve, the fault tests, then the table
# (reads the counts `make fuzz` wrote when there are any, else fuzzes 100,000 a parser).
SOAK_REQUESTS ?= 1000000
soak: $(STAMP)
	nice -n 10 $(BIN)/python benchmarks/soak.py --requests $(SOAK_REQUESTS) \
		$(if $(wildcard build/fuzz.json),--fuzz-report build/fuzz.json,)

# Mutation testing (docs/testing.md): not part of `make test`; about an hour on 2 cores.
# `make mutate GROUPS="policy identify"` runs some groups; the report lists the survivors.
GROUPS ?=
mutate: $(STAMP)
	nice -n 10 $(BIN)/python scripts/mutate.py $(GROUPS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build/mutation
