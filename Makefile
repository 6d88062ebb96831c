# The two commands: `make demo` and `make test`. Everything else is a helper of theirs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean venv vendor serve

venv: $(STAMP)

# The portal's front-end libraries, from the npm registry through the lock file
# (web/package-lock.json), copied where the server serves them (/static/vendor/...; git-ignored):
# nothing is loaded from the internet at run time.
OSD_BUILD := web/node_modules/openseadragon/build/openseadragon
OSD := src/quantscope/server/static/vendor/openseadragon
VENDOR_STAMP := $(OSD)/.installed

vendor: $(VENDOR_STAMP)

$(VENDOR_STAMP): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	rm -rf $(OSD)
	mkdir -p $(OSD)
	cp -R $(OSD_BUILD)/openseadragon.min.js $(OSD_BUILD)/openseadragon.min.js.map $(OSD_BUILD)/images $(OSD)/
	cp web/node_modules/openseadragon/LICENSE.txt $(OSD)/
	touch $@

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP) $(VENDOR_STAMP)
	rm -rf $(DEMO)
	$(BIN)/quantscope synth $(DEMO)/plate --plate 2x3 --fields 2 --channels DAPI,GFP --size 512 --seed 1
	$(BIN)/quantscope init $(DEMO)/repo
	$(BIN)/quantscope ingest $(DEMO)/repo $(DEMO)/plate/images
	$(BIN)/quantscope run $(DEMO)/repo pipelines/nuclei.yaml
	$(BIN)/quantscope features $(DEMO)/repo latest --format anndata --out $(DEMO)/nuclei.h5ad
	$(BIN)/quantscope find $(DEMO)/repo 'channel.name == "DAPI" and well in ("A01", "B02")'
	$(BIN)/quantscope ls $(DEMO)/repo
	$(BIN)/quantscope summary $(DEMO)/repo
	@echo
	@echo "The portal: run  make serve  (or  $(BIN)/quantscope serve $(DEMO)/repo ),"
	@echo "then open http://127.0.0.1:8000/ in a browser (API docs: http://127.0.0.1:8000/docs)."

# the web portal and API over the demo repository (single-user mode: 127.0.0.1 only)
serve: $(STAMP) $(VENDOR_STAMP)
	test -d $(DEMO)/repo || $(MAKE) demo
	$(BIN)/quantscope serve $(DEMO)/repo --port 8000

# two workers (the machines have 2 cores); a test file runs whole on one worker
TEST_WORKERS ?= 2
test: $(STAMP) $(VENDOR_STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/qc.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/serve.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache web/node_modules $(OSD)
