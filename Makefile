# Fuzzing targets (everything else: scripts/test.sh).
#   make fuzz FUZZTIME=10m   every fuzzer for FUZZTIME, one after the other
#   make fuzz-smoke          every fuzzer for a few seconds (CI)
#   make fuzz-corpus         regenerate testdata/fuzz/ from real data
FUZZTIME ?= 10m
SMOKETIME ?= 2s
FUZZPARALLEL ?= 1
# Go minimizes every new interesting input for up to a minute, without
# counting executions; with the large real seeds that ate most of a run.
FUZZMINTIME ?= 5s
GO ?= go
F = $(GO) test -run XXX -parallel $(FUZZPARALLEL) -fuzzminimizetime $(FUZZMINTIME) -fuzztime $(FUZZTIME) -fuzz

.PHONY: fuzz fuzz-smoke fuzz-corpus
fuzz:
	$(F) '^FuzzDecoder$$' ./rsp
	$(F) '^FuzzHandlers$$' ./rsp
	$(F) '^FuzzCompressRuns$$' ./rsp
	$(F) '^FuzzClientReplies$$' ./rsp
	$(F) '^FuzzDecodeUnwindInfo$$' ./unwind
	$(F) '^FuzzStepWalk$$' ./unwind
	$(F) '^FuzzReadImage$$' ./unwind
	$(F) '^FuzzEHFrame$$' ./unwind/dwarf
	$(F) '^FuzzDebugFrame$$' ./unwind/dwarf
	$(F) '^FuzzCFAProgram$$' ./unwind/dwarf
	$(F) '^FuzzEHFrameHdr$$' ./unwind/dwarf
	$(F) '^FuzzEval$$' ./unwind/dwarf
	$(F) '^FuzzPESections$$' ./unwind/dwarf
	$(F) '^FuzzRun$$' ./monitor
	$(F) '^FuzzParse$$' ./monitor
	$(F) '^FuzzLoad$$' ./guest
	$(F) '^FuzzWalk$$' ./guest/winproc
	$(F) '^FuzzModules$$' ./guest/linuxproc
	$(F) '^FuzzMatchBuiltin$$' ./unwind/cfi
	$(F) '^FuzzImage$$' ./internal/elfmem
	$(F) '^FuzzCursor$$' ./internal/bytecur
	$(F) '^FuzzParseTID$$' ./emulator/qemu

fuzz-smoke:
	$(MAKE) fuzz FUZZTIME=$(SMOKETIME)

fuzz-corpus:
	RSPSTUB_WRITE_CORPUS=1 $(GO) test -count=1 -run '^TestWriteFuzzCorpus$$' ./rsp ./unwind ./unwind/dwarf ./monitor ./guest ./emulator/qemu
