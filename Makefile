# pastefile — one entry point for provisioning, tests, benchmarks and the dev server.
#   make test    provision a fresh Debian/Ubuntu machine, build, run every test
#   make run     serve development.ini on http://localhost:6543
#   make bench   benchmark suites, the load comparison and benchmarks/REPORT.md
#   make profile line-by-line profile of the upload and resize paths, and a
#                flame graph of the server under uploads
#   make soak    the fault tests at full size: 32 clients, 10,000 files

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := build-essential python3-dev python3-venv postgresql memcached libpq-dev libssl-dev \
	libmagic1 libjpeg-dev zlib1g-dev libvips42 chromium chromium-driver fonts-liberation wrk curl \
	libimage-exiftool-perl nginx-light openssl systemd
# installed with --no-install-recommends (the recommends pull in ceph-mgr, its
# Python modules and more); the throwaway S3 gateway of the tests (tests/ceph.py)
APT_NORECOMMENDS := radosgw ceph-mon ceph-osd
PYTEST_ARGS ?=
# e.g. make bench LOAD_ARGS="--seconds 4 --repeats 1" or LOAD_ARGS="--only upload-64k read-i"
LOAD_ARGS ?=

.PHONY: deps install test soak bench profile run clean

# $(call apt_install,PACKAGES,APT-GET FLAGS,LABEL): the Debian packages among
# PACKAGES not installed yet, installed (apt-get as root, sudo otherwise)
define apt_install
missing=""; \
for p in $(1); do \
  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then \
  echo "installing Debian packages$(3):$$missing"; \
  if [ "$$(id -u)" = 0 ]; then sudo=""; \
  elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
  else echo "root is needed to install:$$missing" >&2; exit 1; fi; \
  $$sudo apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(2) $$missing; \
fi
endef

# Debian packages, installed only when missing.
deps:
	@$(call apt_install,$(APT_PACKAGES),,)
	@$(call apt_install,$(APT_NORECOMMENDS),--no-install-recommends, without recommends)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Editable install: compiles the CFFI and Cython extensions into ext/.
$(STAMP): $(BIN)/python setup.py pyproject.toml build_ext.py $(wildcard ext/src/*.c ext/src/*.h ext/*.pyx ext/*.pxd)
	$(BIN)/pip install -q -U pip wheel
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: deps $(STAMP)

test: install
	$(BIN)/python -m pytest -p no:cacheprovider --benchmark-disable $(PYTEST_ARGS)

# tests/test_faults.py at full size (make test runs it at smoke size)
soak: install
	FAULTS_SCALE=soak $(BIN)/python -m pytest -p no:cacheprovider --benchmark-disable -s \
	  tests/test_faults.py $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m pytest -p no:cacheprovider benchmarks --benchmark-only --timeout 0 \
	  --benchmark-json=benchmarks/results.json $(PYTEST_ARGS)
	$(BIN)/python -m benchmarks.hash_throughput --size-mb 256 | tee benchmarks/throughput.txt
	$(BIN)/python -m benchmarks.load --json benchmarks/load.json $(LOAD_ARGS)
	$(BIN)/python -m benchmarks.big_upload --size-mb 1024 --json benchmarks/big_upload.json
	$(BIN)/python -m benchmarks.tus_upload --size-mb 1024 --json benchmarks/tus_upload.json
	$(BIN)/python -m benchmarks.photo_costs --json benchmarks/photo_costs.json
	$(BIN)/python -m benchmarks.upload_costs --json benchmarks/upload_costs.json
	$(BIN)/python -m benchmarks.report benchmarks/results.json benchmarks/REPORT.md \
	  --throughput benchmarks/throughput.txt --load benchmarks/load.json

profile: install
	$(BIN)/python -m benchmarks.profile_paths
	$(BIN)/python -m benchmarks.load --profile benchmarks/profile/upload-flame.svg --seconds 20

# `make run` needs only what builds the extensions and serves development.ini:
# no browser, load generator, PostgreSQL or memcached server (SQLite, the
# in-process cache), and the package with its dev extra (the debug toolbar
# development.ini includes), not the test stack
RUN_APT_PACKAGES := build-essential python3-dev python3-venv libpq-dev libssl-dev libmagic1 libjpeg-dev \
	zlib1g-dev
RUN_STAMP := $(VENV)/.installed-dev

.PHONY: install-dev

$(RUN_STAMP): $(BIN)/python setup.py pyproject.toml build_ext.py $(wildcard ext/src/*.c ext/src/*.h ext/*.pyx ext/*.pxd)
	$(BIN)/pip install -q -U pip wheel
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install-dev:
	@$(call apt_install,$(RUN_APT_PACKAGES),,)
	@$(MAKE) --no-print-directory $(RUN_STAMP)

run: install-dev
	$(BIN)/pserve development.ini

clean:
	rm -rf build *.egg-info ext/*.so ext/_geometry.c .pytest_cache
