# canfar-jlab: the two commands a newcomer needs are `make lab` and `make test`.
#
#   make lab    install everything and start JupyterLab on the local engine with the example notebook
#   make test   install everything (Chromium included) and run every test: lint, pytest, jest, Galata,
#               and a check that `pip install .` from a clean tree gives a working prebuilt extension

PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
# As root (CI, containers) Jupyter and Chromium need to be told it is fine.
ROOT_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab install frontend browser test lint test-python test-js test-ui check-wheel clean

# JupyterLab serves this checkout; the URL it prints opens the example notebook (a remote user
# too), runs go to ./canfar-runs (the runs-root setting, unless you chose one; the CLI and
# %canfar read it too) so the file browser opens their folders, and terminals get a non-login
# shell so this environment's `canfar-jlab` stays first on their PATH. The engine
# is a daemon that outlives JupyterLab: say so, and how to stop it, when JupyterLab exits.
# LAB_ARGS passes more options to JupyterLab (make lab LAB_ARGS="--port 9999 --no-browser").
EXAMPLE := examples/reduce_fits.ipynb
ENGINE_NOTE := The local engine keeps running (with any replicas still at work). Stop it with: $(VENV)/bin/canfar-jlab engine stop   (add --kill-replicas to end running replicas)
lab: install frontend
	$(BIN)/canfar-jlab config set runs-root $(CURDIR)/canfar-runs --if-unset
	$(BIN)/canfar-jlab engine start
	@echo "JupyterLab opens $(EXAMPLE); press 'Run as batch' in its toolbar."
	@trap 'true' INT; \
	$(BIN)/jupyter lab $(ROOT_FLAGS) --ServerApp.root_dir=$(CURDIR) \
	  --LabApp.default_url=/lab/tree/$(EXAMPLE) \
	  --ServerApp.terminado_settings='{"shell_command": ["bash", "-i"]}' $(LAB_ARGS); \
	status=$$?; echo; echo "JupyterLab has stopped. $(ENGINE_NOTE)"; exit $$status

# Python environment with the package installed editable (its build hook also runs `jlpm install`).
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml package.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# jupyter-builder develop leaves install.json in the labextension folder, which the wheel's
	# shared-data also adds: a second `pip install -e` would fail on the duplicate.
	rm -f canfar_jlab/labextension/install.json
	$(BIN)/pip install --quiet -e ".[dev,test]"
	$(BIN)/jupyter-builder develop --overwrite .
	$(BIN)/jupyter server extension enable --sys-prefix canfar_jlab
	touch $@

# Rebuild the labextension when its sources changed (the editable install links it into Lab);
# an unchanged frontend is not rebuilt. yarn's chatter goes to a log, shown only on failure.
FRONTEND_SOURCES := $(shell find src style schema -type f -not -path '*/__tests__/*' 2>/dev/null) \
  package.json yarn.lock tsconfig.json
frontend: $(VENV)/.frontend

$(VENV)/.frontend: $(VENV)/.installed $(FRONTEND_SOURCES)
	@$(BIN)/jlpm install > $(VENV)/jlpm-install.log 2>&1 || { cat $(VENV)/jlpm-install.log; exit 1; }
	$(BIN)/jlpm build
	touch $@

# Debian's Chromium for the Galata tests (Playwright cannot download its own browser here).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-liberation; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-liberation; fi; }

test: install frontend browser lint test-python test-js test-ui check-wheel
	@echo "All canfar-jlab tests passed."

lint: install
	$(BIN)/ruff check canfar_jlab tests bench ui-tests/jupyter_server_test_config.py
	$(BIN)/ruff format --check canfar_jlab tests bench
	$(BIN)/jlpm lint:check

test-python: install
	$(BIN)/pytest

test-js: frontend
	$(BIN)/jlpm test

test-ui: frontend browser
	cd ui-tests && $(BIN)/jlpm install && CI=1 $(BIN)/jlpm test

check-wheel: install
	bash scripts/check-wheel.sh $(BIN)/python

clean:
	$(BIN)/jlpm clean:all || true
	rm -rf $(VENV) node_modules ui-tests/node_modules
