# cardswitch — build, run, test. See README.md.
GO       ?= go
BIN      := bin
PKGS     := ./...
FUZZTIME ?= 3s

.PHONY: all build run test unit race fuzz lint bench clean

all: build

build:
	$(GO) build -o $(BIN)/switchd ./cmd/switchd
	$(GO) build -o $(BIN)/switchctl ./cmd/switchctl
	$(GO) build -o $(BIN)/posim ./cmd/posim

# The demo switch: embedded demo configuration, data in ./data.
run: build
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
# and every fuzz target briefly.
test: lint build race fuzz

bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

clean:
	rm -rf $(BIN)
