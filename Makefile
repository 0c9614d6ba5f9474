# kvstore's entry points. Every target runs the pinned Deno through tools/deno.sh,
# which installs Deno 2.9.3 from the npm registry when `deno` is missing or another
# version, so a machine with only Node and npm needs nothing else.

DENO := $(CURDIR)/tools/deno.sh

.PHONY: run test check bundle smoke build bench clean help

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# --quiet: the first run in a checkout would otherwise print Deno's box about protobufjs's
# ignored install script (it needs none) before kvstore's own lines.
run: ## Start a master on 0.0.0.0:50051 (pass flags with ARGS="--data-dir /var/lib/kvstore")
	$(DENO) run -A --quiet main.ts $(ARGS)

test: ## Run the whole test suite (unit and integration, in parallel)
	$(DENO) task test

check: ## Type-check, lint and check formatting
	$(DENO) task check
	$(DENO) lint
	$(DENO) fmt --check

bundle: ## Build dist/kvstore.js, one JavaScript file that runs with `deno run -A`
	$(DENO) task bundle
	@printf '#!/bin/sh\n# Runs the bundle with the Deno that built it (used by `make smoke`).\nexec "%s" run -A "$$(dirname "$$0")/kvstore.js" "$$@"\n' \
		"$$($(DENO) --print-path)" > dist/kvstore
	@chmod +x dist/kvstore
	@echo "Built dist/kvstore.js: run it with deno run -A dist/kvstore.js"

smoke: bundle ## Run the smoke subset of the integration tests against the bundle
	KVSTORE_BIN=$(CURDIR)/dist/kvstore $(DENO) test -A --parallel --filter "smoke:" tests/

build: ## Compile one executable, ./kvstore (needs the denort runtime: see README)
	@$(CURDIR)/tools/build.sh

bench: ## Run the benchmarks; figures go to bench/results/
	$(DENO) task bench

clean: ## Remove build output
	rm -rf dist kvstore
