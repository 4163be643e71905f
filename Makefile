# Herald — thin front door. Compilation lives in extension/Makefile (PGXS) and
# sidecar/Makefile; orchestration lives in scripts/.
.PHONY: all deps build install run start stop test bench clean

all: build

deps:
	@scripts/bootstrap.sh

build: deps
	$(MAKE) -C extension
	$(MAKE) -C sidecar

install: build
	$(MAKE) -C extension install

run:
	@scripts/run.sh

start:
	@scripts/start.sh

stop:
	@scripts/stop.sh

test:
	@scripts/test.sh

bench:
	@scripts/bench/run.sh

clean:
	$(MAKE) -C extension clean
	$(MAKE) -C sidecar clean
