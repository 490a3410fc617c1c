# Convenience targets; the scripts are the source of truth.
PREFIX ?= /opt/liaptui
ROOT ?=

.PHONY: build test install run
build:
	swift build -c release --product game-server
	swift build -c release --product metrics-agent
test:
	scripts/test
install:
	scripts/install.sh --prefix "$(PREFIX)" $(if $(ROOT),--root "$(ROOT)")
run:
	scripts/run
