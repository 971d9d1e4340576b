# Fuzzing targets (everything else: scripts/test.sh).
#   make fuzz FUZZTIME=10m   every fuzzer for FUZZTIME, one after the other
#   make fuzz-list           the fuzzers, discovered by go test -list '^Fuzz'
#                            (a new Fuzz* function needs no line here)
#   make fuzz-smoke          every fuzzer for SMOKETIME executions (CI)
#   make fuzz-corpus         regenerate testdata/fuzz/ from real data
#   make fuzz-keep           copy what fuzzing found (GOCACHE) into testdata/fuzz/
FUZZTIME ?= 10m
# The smoke budget is a count, not a duration: with a duration, Go's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" when
# the deadline fires while a worker is mid-input (a race in internal/fuzz,
# seen in our CI on a loaded machine). A count has no deadline to race.
SMOKETIME ?= 10000x
FUZZPARALLEL ?= 1
# Go minimizes every new interesting input for up to a minute, without
# counting executions; with the large real seeds that ate most of a run.
FUZZMINTIME ?= 5s
GO ?= go
FLAGS = -parallel $(FUZZPARALLEL) -fuzzminimizetime $(FUZZMINTIME) -fuzztime $(FUZZTIME)
# scripts/fuzz-one.sh tells a finding from Go's end-of-fuzztime race.
F = GO=$(GO) bash scripts/fuzz-one.sh

.PHONY: fuzz fuzz-list fuzz-smoke fuzz-corpus fuzz-keep
fuzz:
	@list=$$(GO=$(GO) bash scripts/fuzzers.sh) || exit 1; \
	[ -n "$$list" ] || { echo "no fuzz targets found" >&2; exit 1; }; \
	echo "$$list" | while read -r name pkg; do \
		$(F) $$name $$pkg $(FLAGS) || exit 1; \
	done

# Every fuzz target (go test -list '^Fuzz' ./..., see scripts/fuzzers.sh).
fuzz-list:
	@GO=$(GO) bash scripts/fuzzers.sh

fuzz-smoke:
	$(MAKE) fuzz FUZZTIME=$(SMOKETIME)

fuzz-corpus:
	RSPSTUB_WRITE_CORPUS=1 $(GO) test -count=1 -run '^TestWriteFuzzCorpus$$' ./rsp ./unwind ./unwind/dwarf ./monitor ./guest ./emulator/qemu

fuzz-keep:
	bash scripts/fuzz-keep.sh
