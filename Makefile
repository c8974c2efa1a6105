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

# The Swift suite runs with a throwaway PostgreSQL cluster when PostgreSQL is installed: the
# store tests then cover both stores, and the end-to-end suite (the live server) runs a second
# time on the shared store. Without PostgreSQL: the embedded store only, and it says so.
test: setup
	@bash scripts/with-postgres.sh bash scripts/swift-test.sh $(SWIFT) $(CHECK)
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
