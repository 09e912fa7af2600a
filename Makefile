# The menu: `make help`. Every target finds Postgres the same way: DATABASE_URL if set, else the server on
# 127.0.0.1:5432 if it answers, else a private cluster under .data/ (see devtools/devpg).
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
BIN       := bin
DB        := if [ -z "$$DATABASE_URL" ]; then DATABASE_URL="$$($(GO) run ./cmd/devpg)" || exit 1; export DATABASE_URL; fi
SQLC      := $(GOBIN)/sqlc
STRIPEMOCK:= $(GOBIN)/stripe-mock
# Node tools live in .tools/ (gitignored), pinned, installed from npm on first use: a clean checkout needs
# only node and npm.
REDOCLY_VERSION := 2.77.0
TOOLS     := .tools
REDOCLY   := $(TOOLS)/node_modules/.bin/redocly
REDOCLY_STAMP := $(TOOLS)/.redocly-$(REDOCLY_VERSION)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

.PHONY: build
build: ## build billingd, billingctl, pgsim, devpg and mailcatcher into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: run
run: build ## start Postgres (found or private), migrate, start pgsim and billingd on 127.0.0.1:8080
	@$(DB); ./scripts/run.sh

.PHONY: test
test: tools browser alerts ## the whole suite, race detector on, against a real Postgres
	@$(DB); echo "tests use $${DATABASE_URL%%\?*}"; \
	  $(GO) test -race -count=1 -timeout 15m ./...

.PHONY: test-deep
test-deep: ## longer hunts than make test: the money property test at 100 sequences of 30 steps, then a long chaos seed
	@$(DB); RAPID_CHECKS=$${RAPID_CHECKS:-100} RAPID_STEPS=$${RAPID_STEPS:-30} $(GO) test -race -count=1 -timeout 3h ./billing/moneyprop && \
	  $(GO) run ./cmd/chaos -seed $${SEED:-$$RANDOM} -subs 300 -months 3 -replicas 3

.PHONY: test-race
test-race: test ## same as test: the race detector is always on

.PHONY: test-short
test-short: browser ## the suite without the race detector (faster feedback)
	@$(DB); $(GO) test -count=1 -timeout 15m ./...

.PHONY: test-calendar
test-calendar: browser ## the suite with the test clocks starting at chosen instants (month ends, 28/29 Feb, KST midnight)
	@$(DB); for start in 2027-01-31T00:00:00Z 2027-02-28T12:00:00Z 2028-02-29T00:00:00Z 2027-03-31T15:00:00Z 2027-12-31T14:59:59Z; do \
	  echo "== test clocks start at $$start"; \
	  TEST_CLOCK_START=$$start $(GO) test -count=1 -timeout 15m ./... || exit 1; \
	done

.PHONY: lint
lint: alerts $(REDOCLY_STAMP) ## go vet, gofmt, go mod tidy check, redocly lint of api/openapi.json, alert rules
	$(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy; run go mod tidy:"; $(GO) mod tidy -diff; exit 1; }
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(REDOCLY) lint --format=stylish api/openapi.json

.PHONY: generate
generate: $(SQLC) ## sqlc code from the .sql files; the state machine graphs and the dunning timeline in docs/
	$(SQLC) generate
	UPDATE_GRAPHS=1 $(GO) test ./statemachine -run TestGraphsAreCurrent -count=1
	UPDATE_TIMELINE=1 $(GO) test ./devtools/timelinesvg -run TestTimelinePictureIsCurrent -count=1

.PHONY: bench
bench: build ## the billing-day benchmark (quick mode): table on stdout, JSON in bench/out/
	@$(DB); $(GO) run ./cmd/bench -mode quick

.PHONY: bench-full
bench-full: build ## the billing-day benchmark with 1M subscriptions
	@$(DB); $(GO) run ./cmd/bench -mode full

.PHONY: chaos
chaos: ## the chaos suite's long run: 3 replicas SIGKILLed, gateway faults, 3 months (SEED=n to replay)
	@$(DB); $(GO) run ./cmd/chaos -seed $${SEED:-$$RANDOM} -subs 300 -months 3 -replicas 3

.PHONY: db-reset
db-reset: ## drop and recreate the development database (as its owner role), then migrate it
	@$(DB); roles=$$($(GO) run ./cmd/devpg roles) || exit 1; eval "$$roles"; $(GO) run ./cmd/billingctl db-reset

.PHONY: browser
browser: ## install Debian's chromium (browser tests) and poppler-utils (pdftotext, the receipt PDF test) when missing (needs root)
	@{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } && command -v pdftotext >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-wqy-microhei poppler-utils; \
	  else \
	    echo "chromium or pdftotext is missing and only root can install them: sudo apt-get install -y chromium poppler-utils (the browser and receipt PDF tests will fail without them)"; \
	  fi; }

.PHONY: alerts
alerts: ## check and unit-test deploy/prometheus/alerts.yml with promtool (installs Debian's prometheus when missing)
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; \
	  else \
	    echo "promtool is missing and only root can install it: sudo apt-get install -y prometheus"; exit 1; \
	  fi; }
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

.PHONY: tools
tools: $(STRIPEMOCK) ## install the test tools (stripe-mock) when missing

$(STRIPEMOCK):
	$(GO) install github.com/stripe/stripe-mock@v0.203.0

$(REDOCLY_STAMP):
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: install Node.js 20.19+ (apt-get install -y nodejs npm)"; exit 1; }
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error @redocly/cli@$(REDOCLY_VERSION)
	@touch $@

$(SQLC):
	$(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@v1.30.0
