# cardswitch — build, run, test. See README.md.
GO       ?= go
BIN      := bin
PKGS     := ./...
FUZZTIME ?= 3s

.PHONY: all build run test unit race fuzz lint bench benchpair bench-recon gwprof gobench crashtest crashtest-ci crashtest-recharge crashtest-transfer gwcrashtest gwcrashtest-ci abuse deploy-check clean

all: build

build:
	$(GO) build -o $(BIN)/switchd ./cmd/switchd
	$(GO) build -o $(BIN)/switchctl ./cmd/switchctl
	$(GO) build -o $(BIN)/posim ./cmd/posim
	$(GO) build -o $(BIN)/gwsim ./cmd/gwsim
	$(GO) build -o $(BIN)/rechargesim ./cmd/rechargesim

# The demo switch: embedded demo configuration, data in ./data, and the
# demo bank (gwsim, docs/gwsim.md) behind its gateway link. Ctrl-C stops
# both; gwsim prints its balances as it goes.
run: build
	@./$(BIN)/gwsim --recon-dir ./gwsim-recon & gw=$$!; \
	trap 'kill $$gw 2>/dev/null; wait $$gw' EXIT INT TERM; \
	./$(BIN)/switchd

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files -o --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

unit:
	$(GO) test -count=1 $(PKGS)

race:
	$(GO) test -race -count=1 $(PKGS)

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# The one test command: lint, build, every test under the race detector,
# every fuzz target briefly, and the crash test with 3 kills.
test: lint build race fuzz crashtest-ci gwcrashtest-ci

# Switch vs baseline throughput and latency; writes docs/BENCHMARKS.md.
bench:
	./scripts/bench.sh

# Two switchd binaries run at the same time on the same machine, closed
# loop: is NEW faster than OLD (docs/BENCHMARKS.md, "Comparing two
# binaries")? make benchpair OLD=/tmp/switchd.old NEW=bin/switchd
benchpair:
	./scripts/benchpair.sh

# The reconciliation scale check: a day of 5 million journal entries
# exported, imported and matched (docs/BENCHMARKS.md). Not part of test.
bench-recon:
	./scripts/bench-recon.sh

# CPU per consume forwarded through a gateway link to gwsim, with pprof
# profiles of switchd and gwsim split by area (docs/BENCHMARKS.md, "The
# forwarded consume"); GWPROF_TREES: other checkouts measured back to back.
gwprof:
	./scripts/gwprof.sh /tmp/cardswitch-gwprof $(CURDIR) $(GWPROF_TREES)

# The Go benchmarks of the hot paths (spec, hsm, ledger, journal).
gobench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

# SIGKILL switchd 20 times under posim load; nothing acknowledged lost.
crashtest:
	CRASH_KILLS=20 ./scripts/crashtest.sh

# The brief version for CI: 3 kills, well under 2 minutes.
crashtest-ci:
	CRASH_KILLS=3 CRASH_TERMINALS=10 ./scripts/crashtest.sh

# SIGKILL switchd 10 times while recharge platforms credit and reverse
# orders over the gateway port; acknowledged == ledger, nothing doubled
# (docs/recharge.md). make test runs it with 2 kills (go test).
crashtest-recharge:
	RECHARGE_CRASH_KILLS=10 $(GO) test -count=1 -v -run '^TestRechargeCrash' ./switch/

# SIGKILL switchd 10 times while a kiosk loads cards from their bound
# bank accounts at gwsim (dropping 5% of its answers); both sides' books
# agree and the ledger checks (docs/recharge.md). make test runs it with
# 2 kills (go test).
crashtest-transfer:
	TRANSFER_CRASH_KILLS=10 $(GO) test -count=1 -v -run '^TestTransferCrash' ./switch/

# Bank cards through a gateway link to gwsim (dropping 5% of its
# answers) while switchd is SIGKILLed 10 times: every bank debit the
# terminal was not told about is reversed, exactly once.
gwcrashtest:
	GWCRASH_KILLS=10 ./scripts/gwcrashtest.sh

# The brief version for make test: 2 kills, about 30 s.
gwcrashtest-ci:
	GWCRASH_KILLS=2 ./scripts/gwcrashtest.sh

# Malformed frames and idle connections while posim runs at 1,000 TPS.
abuse:
	./scripts/abuse.sh

# The deploy/ files alone: promtool check/test of the alert rules, the
# Grafana dashboard against the daemon's metrics, the systemd unit and the
# Dockerfile (also part of make test, through go test ./...).
deploy-check:
	$(GO) test -count=1 ./deploy

clean:
	rm -rf $(BIN)
