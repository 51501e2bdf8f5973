# skydeskd — see README.md. Every target works on a fresh clone with Go.
GO       ?= go
DATA     ?= ./data
BIN      ?= bin/skydeskd
FUZZTIME ?= 10s

.PHONY: run test build bench bench-http bench-scale bench-nodes fuzz fuzz-smtp lint golden docker clean

run: ## the quick start: 127.0.0.1 only, self-signed cert, demo data
	$(GO) run ./cmd/skydeskd serve --dev --data $(DATA)

# The packages whose tests open a store: run again on PostgreSQL by `test`.
STORE_PKGS ?= ./popstore ./smtpd ./certs ./webui ./autoconfig ./cmd/skydeskd

test: ## the whole suite (CI runs this through .ci/run); the memory test runs without -race; then the store users again on PostgreSQL
	$(GO) test -race -shuffle=on -timeout 20m ./...
	$(GO) test -count=1 -run '^TestMX_bigMessagesKeepMemoryFlat$$' -v ./smtpd
	SKYDESK_TEST_DATABASE=postgres $(GO) test -race -shuffle=on -timeout 20m $(STORE_PKGS)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/skydeskd

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-http: ## wrk vs nginx on the autoconfig endpoints (issue 3); RIG = a set-up copy of ../shared/bench
	RIG=$(or $(RIG),/tmp/skydesk-bench) internal/httpfront/testdata/wrk-vs-nginx.sh

bench-scale: ## issue 14: 10k domains, 1M accounts on a throwaway PostgreSQL: domain add → DNS, cold/cached login, node memory
	SKYDESK_SCALE=1 $(GO) test -count=1 -timeout 60m -run '^TestScale$$' -v ./cmd/skydeskd

bench-nodes: ## issue 14: POP3S/SMTPS on SQLite, PostgreSQL (1 node, 2 behind HAProxy) and Dovecot; RIG = a set-up copy of ../shared/bench
	RIG=$(or $(RIG),/tmp/skydesk-bench) internal/benchnodes/run.sh

fuzz: ## each fuzz target for $(FUZZTIME)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

fuzz-smtp: ## the SMTP DATA-path and header fuzz targets for FUZZTIME each (CI runs them briefly)
	@for f in $$($(GO) test -list '^Fuzz' ./smtpd | grep '^Fuzz'); do \
	  echo "== smtpd $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./smtpd || exit 1; \
	done

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

golden: ## rewrite golden files after an intended change
	$(GO) test ./templates/... ./autoconfig/... -update

docker:
	docker build -t skydeskd .

clean:
	rm -rf bin
