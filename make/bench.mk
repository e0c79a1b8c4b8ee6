# The benchmark (issue 5, docs/performance.md). Included by the main Makefile (`-include make/bench.mk`).
# Results go to bench/results/ (git-ignored); the benchmark's own PostgreSQL and lakes to .local/bench.
# Override the defaults on the command line or in the environment, e.g.
#   make bench BENCH_SCALES="1 10" BENCH_REPEAT=1      (quicker)
#   make bench BENCH_ARGS=--quick                      (development: scales 0.1 and 1, one run each)

VENV ?= .venv
BENCH_SCALES ?= 1 10 100
# Repetitions of every scenario (medians are reported); a full load at a scale >= BENCH_LARGE_SCALE is
# repeated BENCH_FULL_REPEAT_LARGE times instead (it takes minutes each).
BENCH_REPEAT ?= 2
BENCH_FULL_REPEAT_LARGE ?= 1
BENCH_LARGE_SCALE ?= 10
BENCH_ARGS ?=

.PHONY: bench

bench: setup bytecode jvm-archive ## benchmark: full, incremental and no-change runs at scales 1 10 100 vs the COPY floor (about 18 min on 2 cores)
	BENCH_SCALES="$(BENCH_SCALES)" BENCH_REPEAT=$(BENCH_REPEAT) BENCH_FULL_REPEAT_LARGE=$(BENCH_FULL_REPEAT_LARGE) \
	  BENCH_LARGE_SCALE=$(BENCH_LARGE_SCALE) \
	  $(VENV)/bin/python -m bench.run $(BENCH_ARGS)
