# airflow-mlplatform: set-up, the quickstart pipeline, tests, checks, benchmarks.
#   make setup       system packages (R, IRkernel, pandoc, Java 17, PostgreSQL, node, chromium), .venv
#                    with the provider and every extra, the Scala (Apache Toree) kernel over pyspark's
#                    bundled Spark, the workflow designer's front end (ui/ -> plugin/static/) and
#                    .venv-serving (the model server of the KServe test bed)
#   make ui          build the designer's front end only (npm ci + vite)
#   make quickstart  run the quickstart ML pipeline end to end (SQLite, all local)
#   make test        the test suite (what CI runs), the deployment tier included
#   make test-deployment  only the tier on real Airflow processes (PostgreSQL, LocalExecutor)
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := r-base-core r-cran-irkernel r-cran-rmarkdown r-cran-jsonlite pandoc git postgresql openjdk-17-jre-headless chromium
# the designer's front end is built with node + npm; Debian's packages unless node is there already
NODE_APT_PACKAGES := nodejs npm
NPM := npm

.PHONY: setup system-packages venv serving-venv scala-kernel ui ui-test quickstart quickstart-workflow test test-deployment lint bench clean

setup: system-packages venv serving-venv scala-kernel ui

system-packages:
	@if command -v apt-get >/dev/null 2>&1; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then missing="$$missing $(NODE_APT_PACKAGES)"; fi; \
	  if [ -n "$$missing" ]; then \
	    echo "apt-get install $$missing"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else echo "no apt-get: install R, IRkernel, rmarkdown, jsonlite, pandoc, PostgreSQL, a Java 17 runtime, node + npm and chromium yourself"; fi

venv:
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade uv
	$(VENV)/bin/uv pip install --python $(PY) -q -c requirements/constraints.txt -e ".[all]"

# The model server (MLServer + its scikit-learn runtime) that the tests' fake KServe controller runs
# (tests/fake_kserve_controller.py), in a virtual environment of its own: MLServer 1.7.1 pins
# fastapi<0.116 and Airflow 3 needs a newer fastapi, so it cannot be installed in $(VENV).
# The tests find it at .venv-serving/bin/python (or MLPLATFORM_SERVING_PYTHON).
SERVING_VENV ?= .venv-serving
serving-venv:
	[ -x $(VENV)/bin/uv ] || $(MAKE) venv
	[ -x $(SERVING_VENV)/bin/python ] || python3 -m venv $(SERVING_VENV)
	$(VENV)/bin/uv pip install --python $(SERVING_VENV)/bin/python -q -r requirements/serving.txt

# The Toree kernel (Scala 2.12) over the Spark that pyspark 3.5 bundles; Spark UI off, driver on loopback
# (a compute profile's `spark:` field replaces these options per job, through SPARK_OPTS).
scala-kernel:
	spark_home=$$($(PY) -c "import os, pyspark; print(os.path.dirname(pyspark.__file__))") && \
	$(VENV)/bin/jupyter toree install --sys-prefix --spark_home="$$spark_home" \
	  --spark_opts='--master local[2] --conf spark.ui.enabled=false --conf spark.driver.host=127.0.0.1' >/dev/null

# The workflow designer's front end: ui/ (TypeScript + React) -> src/airflow_mlplatform/plugin/static/
# (gitignored; shipped in the wheel). `npm ci` installs exactly package-lock.json.
ui:
	$(NPM) --prefix ui ci --no-audit --no-fund --loglevel=error
	$(NPM) --prefix ui run build

ui-test:
	$(NPM) --prefix ui test

quickstart:
	$(PY) scripts/quickstart.py

quickstart-workflow:
	$(PY) scripts/quickstart.py --workflow

# the front end's unit tests (vitest), then the Python suite (its e2e tests drive the built designer)
# in TEST_WORKERS processes, each taking whole modules in collection order (slow modules first:
# tests/conftest.py; xdist would otherwise start with the modules that have the most tests)
TEST_WORKERS ?= 2
test: ui-test
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-deployment:
	$(PY) -m pytest -q -p no:cacheprovider -m deployment tests/deployment

lint:
	$(VENV)/bin/ruff check src tests benchmarks example_dags scripts
	$(VENV)/bin/ruff format --check src tests benchmarks example_dags scripts
	$(VENV)/bin/mypy
	$(NPM) --prefix ui run typecheck

bench:
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .airflow .pytest_cache .mypy_cache .ruff_cache
