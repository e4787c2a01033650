# The README's commands. Each installs what is missing first (scripts/deps.sh).
JOBS ?= $(shell nproc)
CONFIG ?= examples/sluice.yaml
FUZZ_SECONDS ?= 60

.PHONY: all deps build build-asan run test fuzz bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_TESTS=OFF >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

run: build
	build/sluice serve --config $(CONFIG)

test: build-asan
	@scripts/deps.sh --e2e
	@scripts/test.sh build-asan

fuzz: deps
	@scripts/deps.sh --e2e
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	@bench/overhead/run.sh

clean:
	rm -rf build build-asan build-fuzz
