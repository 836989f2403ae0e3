# gardenpath: `make book` builds the book, `make test` runs the tests.
# Both create .venv from requirements.txt when it is missing or requirements.txt changed.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements.stamp
PROFILE ?= cpu
# chapters run at once by `make book`: each measures on one thread, so two fill two cores
JOBS   ?= 2
ARGS   ?=
ROOT   ?= .

.PHONY: book run test lint bench pdf status params browser clean venv

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@cp requirements.txt $(STAMP)

book: $(STAMP)
	$(PY) -m gardenpath build --profile $(PROFILE) --jobs $(JOBS) $(ARGS)

run: $(STAMP)
	$(PY) -m gardenpath run --profile $(PROFILE) $(ARGS)

status: $(STAMP)
	$(PY) -m gardenpath status --profile $(PROFILE)

params: $(STAMP)
	$(PY) -m gardenpath params

# Debian's chromium for the page tests and the PDF, and poppler-utils (pdftotext) for the
# PDF's test: installed with apt when run as root and missing.
browser:
	@{ command -v chromium && command -v pdftotext; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	   poppler-utils >/dev/null) || \
	  echo "note: no chromium or pdftotext; browser tests will skip (run as root to install)"; }

test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest -q $(ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks $(ARGS)

# The print version, book/_build/pdf/gardenpath.pdf: the single-page build (every chart a
# static SVG) printed by headless Chromium. ROOT=<tree> builds another gardenpath tree.
pdf: $(STAMP) browser
	$(PY) -m gardenpath --root $(ROOT) build --profile $(PROFILE) --builder singlehtml $(ARGS)
	$(PY) -m gardenpath.printpdf --root $(ROOT)

clean:
	rm -rf book/_build book/chapters .gardenpath
