# Kaifang — the two commands a new user needs:
#   make demo   builds Kaifang and runs the demo server on http://127.0.0.1:8080
#   make test   builds and runs the whole test suite
# Both install the Debian libraries Kaifang needs if they are missing (scripts/setup.sh).

PORT ?= 8080
SWIFT ?= swift
# Every target imports only what it declares in Package.swift.
CHECK ?= --explicit-target-dependency-import-check error

.PHONY: demo test build setup check-openapi screenshot clean

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT) build $(CHECK)

demo: build
	.build/debug/kaifang demo --port $(PORT)

test: setup
	$(SWIFT) test $(CHECK)
	@bash scripts/check-openapi.sh
	@bash scripts/schemathesis.sh
	@bash scripts/portal-check.sh
	@bash scripts/fuzz.sh $${FUZZ_SECONDS:-10}

check-openapi:
	@bash scripts/check-openapi.sh

# Refreshes the README's screenshot (docs/screenshots/dataset.png) from a portal check run.
screenshot: build
	@rm -rf .screenshots && mkdir -p .screenshots
	@SCREENSHOTS=.screenshots bash scripts/portal-check.sh
	cp .screenshots/datasets-enterprises-desktop.png docs/screenshots/dataset.png

clean:
	rm -rf .build .venv
