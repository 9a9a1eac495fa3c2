# Two commands do everything on a fresh clone: `make train` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Ship compiled bytecode: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
# command would otherwise recompile thousands of modules (about 10 s per kedro command).
export UV_COMPILE_BYTECODE := 1
export KEDRO_DISABLE_TELEMETRY := 1
export MLFLOW_DISABLE_TELEMETRY := true
export KEDRO_LOGGING_CONFIG := conf/logging.yml

UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: uv install agent-client train test test-fast docs lint format clean bench-envs bench \
	bench-quick

# uv itself, when the machine has none (the product's venv and the anchors' both need it).
uv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv

.venv/.installed: pyproject.toml uv.lock | uv
	$(UV) sync --frozen
	@# MLflow migrates a new SQLite store on first use: do it now, not in the first run.
	$(UV) run --frozen python -c "import mlflow; mlflow.MlflowClient('sqlite:///mlflow.db').search_experiments()"
	@touch $@

install: .venv/.installed

train: install
	$(UV) run --frozen kedro run --pipelines=train

# The seed's babysitter SDK (pinned in tests/agent_client) for the agent-client test.
agent-client:
	@if command -v npm >/dev/null; then \
		[ -d tests/agent_client/node_modules ] || npm ci --prefix tests/agent_client \
			--omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "npm is missing: the babysitter agent-client test will be skipped"; fi

test: install lint agent-client
	$(UV) run --frozen pytest

# The fast tier: in-process unit tests in under a minute (no e2e- or slow-marked test).
test-fast: install
	$(UV) run --frozen pytest -m "not e2e and not slow"

# The documentation site (docs/, mkdocs.yml) into site/; a broken link or a missing page fails it.
docs: install
	$(UV) run --frozen mkdocs build --strict --site-dir site

# The anchors' own venvs (FLAML; AutoGluon without torch), never in the product's dependencies.
bench-envs: uv
	benchmarks/anchors_env.sh

# The project beside FLAML, AutoGluon, Optuna+LightGBM, LightGBM, HistGB: 21 sets, 60 s (~2-2.5 h)
bench: install bench-envs
	$(UV) run --frozen python benchmarks/run_bench.py --timeout 60

# 6 varied sets (binary, multiclass, regression; 276-3,564 rows), 30 s each (~25 min)
bench-quick: install bench-envs
	$(UV) run --frozen python benchmarks/run_bench.py --quick --output benchmarks/results/quick.md

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

clean:
	rm -rf mlflow.db mlruns info.log data/0[2-8]_*/*[!.gitkeep]
