# srdgd: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
PY ?= /usr/bin/python3
BIN := bin/srdgd
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: deps build demo run test test-go test-py vet fuzz bench models clean

deps:
	scripts/deps.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/srdgd

# sets a fresh Debian 12 machine up and runs the daemon on its built-in demo
demo: deps build
	./$(BIN) demo

run: build
	./$(BIN) run --config config/srdgd.example.yaml

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -race -timeout 30m ./...

test-py:
	$(PY) -m unittest discover -s models/tests -t .

# the README's test command (CI runs `make deps` then this)
test: vet test-go test-py

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin
