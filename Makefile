# faultlens developer commands. `make run` and `make test` install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Empty: `make run` serves the database every command uses by default (FAULTLENS_DATABASE_URL, else
# data/faultlens.db), so keys created and files imported as the README says are the ones it serves.
DB ?=
DB_FLAG := $(if $(DB),--db $(DB))

.PHONY: install run test fuzz scale-test drills lint typecheck check bench demo clean deploy-assets

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Serves http://127.0.0.1:8000; the default data/faultlens.db is loaded with the demo data set the first time.
run: install
	@test -n "$(DB)$(FAULTLENS_DATABASE_URL)" -o -f data/faultlens.db || $(BIN)/faultlens demo --events 200000 --days 30
	$(BIN)/faultlens serve $(DB_FLAG)

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest
	$(BIN)/pytest tests/drills -p no:cacheprovider -n 2

# Three replicas on PostgreSQL behind HAProxy, kill -9 during ingest (tests/scale; about 3 minutes, not in `test`).
# FAULTLENS_SCALE_SECONDS shortens the ingest minute.
scale-test: install
	$(BIN)/pytest tests/scale -p no:cacheprovider -n 0

# Schemathesis over every operation with 100 cases per operation and mode (`make test` runs 8); the two modes run
# side by side. About 3 minutes, not in `test`.
fuzz: install
	FAULTLENS_FUZZ_EXAMPLES=100 $(BIN)/pytest tests/integration/test_schemathesis.py -p no:cacheprovider -n 2 --dist load

# Every failure drill at full length (a minute of receiver outage, ...); `make test` runs them at a tenth of it.
drills: install
	$(BIN)/faultlens drill run --all --report drills-report.md --json drills-report.json

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

# Throughput and latency goals with a baseline measured in the same run; numbers go in the README.
bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/classifier_build.py
	$(BIN)/python bench/canary_false_alarms.py
	$(BIN)/python bench/fingerprint.py
	$(BIN)/python bench/query.py --sizes 1000000
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/backfill.py
	$(BIN)/python bench/healthz.py
	$(BIN)/python bench/healthz_ingest.py
	$(BIN)/python bench/fingerprint_limit.py
	$(BIN)/python bench/redact.py
	$(BIN)/python bench/redis_hang.py
	$(BIN)/python bench/otlp.py
	$(BIN)/python bench/alerts.py
	$(BIN)/python bench/scale.py

# deploy/ (Grafana dashboard, Prometheus rules, their promtool tests, scrape example) from the metric dictionary.
deploy-assets: install
	$(BIN)/python -m faultlens.deploy_assets --out deploy --namespace faultlens

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
