# Fuzzing targets (everything else: scripts/test.sh).
#   make fuzz FUZZTIME=10m   every fuzzer for FUZZTIME, one after the other
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

.PHONY: fuzz fuzz-smoke fuzz-corpus fuzz-keep
fuzz:
	$(F) FuzzDecoder ./rsp $(FLAGS)
	$(F) FuzzHandlers ./rsp $(FLAGS)
	$(F) FuzzCompressRuns ./rsp $(FLAGS)
	$(F) FuzzClientReplies ./rsp $(FLAGS)
	$(F) FuzzAgentExpr ./rsp $(FLAGS)
	$(F) FuzzDecodeUnwindInfo ./unwind $(FLAGS)
	$(F) FuzzStepWalk ./unwind $(FLAGS)
	$(F) FuzzReadImage ./unwind $(FLAGS)
	$(F) FuzzEHFrame ./unwind/dwarf $(FLAGS)
	$(F) FuzzDebugFrame ./unwind/dwarf $(FLAGS)
	$(F) FuzzCFAProgram ./unwind/dwarf $(FLAGS)
	$(F) FuzzEHFrameHdr ./unwind/dwarf $(FLAGS)
	$(F) FuzzEval ./unwind/dwarf $(FLAGS)
	$(F) FuzzPESections ./unwind/dwarf $(FLAGS)
	$(F) FuzzRun ./monitor $(FLAGS)
	$(F) FuzzParse ./monitor $(FLAGS)
	$(F) FuzzLoad ./guest $(FLAGS)
	$(F) FuzzWalk ./guest/winproc $(FLAGS)
	$(F) FuzzModules ./guest/linuxproc $(FLAGS)
	$(F) FuzzMatchBuiltin ./unwind/cfi $(FLAGS)
	$(F) FuzzImage ./internal/elfmem $(FLAGS)
	$(F) FuzzCursor ./internal/bytecur $(FLAGS)
	$(F) FuzzParseTID ./emulator/qemu $(FLAGS)
	$(F) FuzzSyscall ./guest/wine $(FLAGS)
	$(F) FuzzParse ./internal/peimage $(FLAGS)
	$(F) FuzzMSVC ./internal/demangle $(FLAGS)
	$(F) FuzzGuestCode ./emulator/unicorn $(FLAGS)

fuzz-smoke:
	$(MAKE) fuzz FUZZTIME=$(SMOKETIME)

fuzz-corpus:
	RSPSTUB_WRITE_CORPUS=1 $(GO) test -count=1 -run '^TestWriteFuzzCorpus$$' ./rsp ./unwind ./unwind/dwarf ./monitor ./guest ./emulator/qemu

fuzz-keep:
	bash scripts/fuzz-keep.sh
