package unicorn

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rspstub/rspstub/internal/arch"
)

// BenchmarkRun iterations each run about 10^8 guest instructions; on a
// shared machine use
//
//	go test -run XXX -bench Run/ -benchtime 3x
//	go test -run XXX -bench 'Step|Hit|Context' -benchtime 20000x

const loopIters = 50_000_000 // two instructions each

// slowIters is for loops with stores (raw libunicorn 2.0.1 runs stores
// at about 70 ns each, see doc.go, "Stores").
const slowIters = 2_500_000

// insns is the number of guest instructions code runs.
func insns(code []byte) float64 {
	n := float64(binary.LittleEndian.Uint32(code[3:]))
	switch len(code) {
	case len(memLoopCode0):
		return 4 * n
	case len(callLoopCode0):
		return 4 * n
	case len(loadLoopCode0):
		return 3 * n
	}
	return 2 * n
}

var (
	memLoopCode0  = memLoopCode()
	callLoopCode0 = callLoopCode()
	loadLoopCode0 = loadLoopCode()
)

// loopCode counts rcx down from loopIters.
func loopCode() []byte {
	code := []byte{
		0x48, 0xc7, 0xc1, 0, 0, 0, 0, // 10000: mov rcx, loopIters
		0x48, 0xff, 0xc9, // 10007: dec rcx
		0x75, 0xfb, // 1000a: jnz 0x10007
		0xf4, // 1000c: hlt
	}
	binary.LittleEndian.PutUint32(code[3:], loopIters)
	return code
}

// memLoopCode does a store and a load per iteration (4 instructions).
func memLoopCode() []byte {
	code := []byte{
		0x48, 0xc7, 0xc1, 0, 0, 0, 0, // 10000: mov rcx, loopIters/2
		0x48, 0x89, 0x0c, 0x25, 0x00, 0x00, 0x30, 0x00, // 10007: mov [0x300000], rcx
		0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, // 1000f: mov rax, [0x300000]
		0x48, 0xff, 0xc9, // 10017: dec rcx
		0x75, 0xeb, // 1001a: jnz 0x10007
		0xf4, // 1001c: hlt
	}
	binary.LittleEndian.PutUint32(code[3:], slowIters)
	return code
}

// loadLoopCode does a load per iteration (3 instructions).
func loadLoopCode() []byte {
	code := []byte{
		0x48, 0xc7, 0xc1, 0, 0, 0, 0, // 10000: mov rcx, loopIters*2/3
		0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, // 10007: mov rax, [0x300000]
		0x48, 0xff, 0xc9, // 1000f: dec rcx
		0x75, 0xf3, // 10012: jnz 0x10007
		0xf4, // 10014: hlt
	}
	binary.LittleEndian.PutUint32(code[3:], loopIters*2/3)
	return code
}

// strideBase and strideSize: the memory strideCode reads.
const strideBase, strideSize = 0x10000000, 0x4000000

// strideCode loads one qword from each 4 KiB page of 64 MiB in turn,
// loopIters/4 loads.
func strideCode() []byte {
	code := []byte{
		0x48, 0xc7, 0xc1, 0, 0, 0, 0, // 10000: mov rcx, loopIters/4
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x00, 0x10, // 10007: mov rbx, strideBase
		0x48, 0x8b, 0x03, // 1000e: mov rax, [rbx]
		0x48, 0x81, 0xc3, 0x00, 0x10, 0x00, 0x00, // 10011: add rbx, 0x1000
		0x48, 0x81, 0xfb, 0x00, 0x00, 0x00, 0x14, // 10018: cmp rbx, strideBase+strideSize
		0x72, 0x07, // 1001f: jb 0x10028
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x00, 0x10, // 10021: mov rbx, strideBase
		0x48, 0xff, 0xc9, // 10028: dec rcx
		0x75, 0xe1, // 1002b: jnz 0x1000e
		0xf4, // 1002d: hlt
	}
	binary.LittleEndian.PutUint32(code[3:], loopIters/4)
	return code
}

// callLoopCode calls a function that returns at once (3 instructions per
// iteration, one call and one ret).
func callLoopCode() []byte {
	code := []byte{
		0x48, 0xc7, 0xc1, 0, 0, 0, 0, // 10000: mov rcx, loopIters*2/3
		0xe8, 0x0b, 0x00, 0x00, 0x00, // 10007: call 0x10017
		0x48, 0xff, 0xc9, // 1000c: dec rcx
		0x75, 0xf6, // 1000f: jnz 0x10007
		0xf4,          // 10011: hlt
		0, 0, 0, 0, 0, // 10012: padding
		0xc3, // 10017: ret
	}
	binary.LittleEndian.PutUint32(code[3:], slowIters)
	return code
}

func benchRun(b *testing.B, code []byte, setup func(*Machine)) {
	m := newMachine(b, code)
	if setup != nil {
		setup(m)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		must(b, m.SetReg(arch.RIP, codeBase))
		if s := m.Run(); s.Reason != StopHalt {
			b.Fatalf("stop %+v", s)
		}
	}
	b.ReportMetric(float64(b.N)*insns(code)/b.Elapsed().Seconds()/1e6, "Minsn/s")
}

func BenchmarkRun(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchRun(b, loopCode(), nil) })
	b.Run("1000bp", func(b *testing.B) {
		benchRun(b, loopCode(), func(m *Machine) {
			for i := uint64(0); i < 1000; i++ {
				must(b, m.AddBreakpoint(codeBase+0x1000+i*16, i%2 == 0))
			}
		})
	})
	b.Run("load", func(b *testing.B) { benchRun(b, loadLoopCode(), nil) })
	b.Run("load-sync", func(b *testing.B) { benchRun(b, loadLoopCode(), func(m *Machine) { m.SetPCSync(true) }) })
	b.Run("load-watch", func(b *testing.B) {
		benchRun(b, loadLoopCode(), func(m *Machine) { must(b, m.AddWatchpoint(dataBase+0x800, 8, WatchWrite)) })
	})
	b.Run("mem", func(b *testing.B) { benchRun(b, memLoopCode(), nil) })
	b.Run("mem-watch", func(b *testing.B) {
		benchRun(b, memLoopCode(), func(m *Machine) { must(b, m.AddWatchpoint(dataBase+0x800, 8, WatchWrite)) })
	})
	b.Run("call", func(b *testing.B) { benchRun(b, callLoopCode(), nil) })
	b.Run("call-shadow", func(b *testing.B) { benchRun(b, callLoopCode(), func(m *Machine) { m.SetShadowStack(true) }) })
	b.Run("shadow", func(b *testing.B) { benchRun(b, loopCode(), func(m *Machine) { m.SetShadowStack(true) }) })
}

func BenchmarkStep(b *testing.B) {
	m := newMachine(b, countLoop)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s := m.Step(); s.Reason != StopStep {
			b.Fatalf("stop %+v", s)
		}
	}
}

// Run -> breakpoint -> Run, as a debugger continuing over a hot breakpoint.
func BenchmarkBreakpointHit(b *testing.B) {
	m := newMachine(b, countLoop)
	must(b, m.AddBreakpoint(codeBase+3, false))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s := m.Run(); s.Reason != StopBreakpoint {
			b.Fatalf("stop %+v", s)
		}
	}
}

// GDB's way: after a stop remove every breakpoint, step off, reinsert, continue.
func BenchmarkBreakpointHitGDB(b *testing.B) {
	m := newMachine(b, countLoop)
	must(b, m.AddBreakpoint(codeBase+3, false))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		must(b, m.RemoveBreakpoint(codeBase+3, false))
		m.Step()
		must(b, m.AddBreakpoint(codeBase+3, false))
		if s := m.Run(); s.Reason != StopBreakpoint {
			b.Fatalf("stop %+v", s)
		}
	}
}

func BenchmarkReadContext(b *testing.B) {
	m := newMachine(b, nil)
	var c Context
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.ReadContext(&c)
	}
}

func BenchmarkWriteContext(b *testing.B) {
	m := newMachine(b, nil)
	var c Context
	must(b, m.ReadContext(&c))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.WriteContext(&c)
	}
}

// BenchmarkOverhead alternates a baseline and a variant in every iteration
// (so that load from other processes hits both alike) and reports the
// variant's time over the baseline's.
func BenchmarkOverhead(b *testing.B) {
	type side struct {
		code  []byte
		setup func(*Machine) // nil machine side: raw libunicorn
		raw   bool
	}
	run := func(b *testing.B, base, variant side) {
		var mbase, mvar *Machine
		if !base.raw {
			mbase = newMachine(b, base.code)
			if base.setup != nil {
				base.setup(mbase)
			}
		}
		mvar = newMachine(b, variant.code)
		if variant.setup != nil {
			variant.setup(mvar)
		}
		one := func(m *Machine, code []byte) time.Duration {
			t0 := time.Now()
			if m == nil {
				must(b, rawRun(code))
				return time.Since(t0)
			}
			must(b, m.SetReg(arch.RIP, codeBase))
			if s := m.Run(); s.Reason != StopHalt {
				b.Fatalf("stop %+v", s)
			}
			return time.Since(t0)
		}
		var tb, tv time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			tb += one(mbase, base.code)
			tv += one(mvar, variant.code)
		}
		b.ReportMetric(float64(tv)/float64(tb), "ratio")
		b.ReportMetric(float64(b.N)*insns(base.code)/tb.Seconds()/1e6, "base-Minsn/s")
	}
	bps := func(m *Machine) {
		for i := uint64(0); i < 1000; i++ {
			must(b, m.AddBreakpoint(codeBase+0x1000+i*16, i%2 == 0))
		}
	}
	b.Run("machine-vs-raw", func(b *testing.B) { run(b, side{code: loopCode(), raw: true}, side{code: loopCode()}) })
	b.Run("1000bp-vs-raw", func(b *testing.B) { run(b, side{code: loopCode(), raw: true}, side{code: loopCode(), setup: bps}) })
	b.Run("load-vs-raw", func(b *testing.B) { run(b, side{code: loadLoopCode(), raw: true}, side{code: loadLoopCode()}) })
	b.Run("store-vs-raw", func(b *testing.B) { run(b, side{code: memLoopCode(), raw: true}, side{code: memLoopCode()}) })
	b.Run("call-vs-raw", func(b *testing.B) { run(b, side{code: callLoopCode(), raw: true}, side{code: callLoopCode()}) })
	b.Run("1000bp-vs-none", func(b *testing.B) { run(b, side{code: loopCode()}, side{code: loopCode(), setup: bps}) })
	sync := func(m *Machine) { m.SetPCSync(true) }
	b.Run("sync-load", func(b *testing.B) {
		run(b, side{code: loadLoopCode()}, side{code: loadLoopCode(), setup: sync})
	})
	b.Run("sync-store", func(b *testing.B) {
		run(b, side{code: memLoopCode()}, side{code: memLoopCode(), setup: sync})
	})
	// Fault paging (the default) against the machine without it: code
	// that does not fault, and loads striding over 16,384 pages, which
	// miss the TLB and walk the tables every time.
	nopaging := func(m *Machine) { must(b, m.SetFaultPaging(false)) }
	b.Run("paging-loop", func(b *testing.B) { run(b, side{code: loopCode(), setup: nopaging}, side{code: loopCode()}) })
	b.Run("paging-load", func(b *testing.B) {
		run(b, side{code: loadLoopCode(), setup: nopaging}, side{code: loadLoopCode()})
	})
	b.Run("paging-store", func(b *testing.B) {
		run(b, side{code: memLoopCode(), setup: nopaging}, side{code: memLoopCode()})
	})
	b.Run("paging-call", func(b *testing.B) {
		run(b, side{code: callLoopCode(), setup: nopaging}, side{code: callLoopCode()})
	})
	big := func(m *Machine) { must(b, m.Map(strideBase, strideSize, arch.PermRW)) }
	b.Run("paging-stride", func(b *testing.B) {
		run(b, side{code: strideCode(), setup: func(m *Machine) { big(m); nopaging(m) }}, side{code: strideCode(), setup: big})
	})
	count := func(m *Machine) { must(b, m.SetCounting(true)) }
	b.Run("count-loop", func(b *testing.B) { run(b, side{code: loopCode()}, side{code: loopCode(), setup: count}) })
	b.Run("count-call", func(b *testing.B) { run(b, side{code: callLoopCode()}, side{code: callLoopCode(), setup: count}) })
	b.Run("count-store", func(b *testing.B) { run(b, side{code: memLoopCode()}, side{code: memLoopCode(), setup: count}) })
	quantum := func(m *Machine) { must(b, m.SetQuantum(1<<40)) }
	b.Run("quantum-loop", func(b *testing.B) { run(b, side{code: loopCode()}, side{code: loopCode(), setup: quantum}) })
	b.Run("quantum-call", func(b *testing.B) { run(b, side{code: callLoopCode()}, side{code: callLoopCode(), setup: quantum}) })
	shadow := func(m *Machine) { m.SetShadowStack(true) }
	b.Run("shadow-call", func(b *testing.B) { run(b, side{code: callLoopCode()}, side{code: callLoopCode(), setup: shadow}) })
	b.Run("shadow-loop", func(b *testing.B) { run(b, side{code: loopCode()}, side{code: loopCode(), setup: shadow}) })
	// A write watchpoint on the data page the loops use (loads never fault
	// on it; stores to it miss the watched bytes) or on the stack page
	// (not touched).
	watch := func(m *Machine) { must(b, m.AddWatchpoint(dataBase+0x800, 8, WatchWrite)) }
	watchOther := func(m *Machine) { must(b, m.AddWatchpoint(stackBase+0x800, 8, WatchWrite)) }
	b.Run("watch-loop", func(b *testing.B) { run(b, side{code: loopCode()}, side{code: loopCode(), setup: watch}) })
	b.Run("watch-load", func(b *testing.B) { run(b, side{code: loadLoopCode()}, side{code: loadLoopCode(), setup: watch}) })
	b.Run("watch-store-other-page", func(b *testing.B) {
		run(b, side{code: memLoopCode()}, side{code: memLoopCode(), setup: watchOther})
	})
	b.Run("watch-store-same-page", func(b *testing.B) {
		run(b, side{code: memLoopCode()}, side{code: memLoopCode(), setup: watch})
	})
	read := func(m *Machine) { must(b, m.AddWatchpoint(stackBase+0x800, 8, WatchRead)) }
	b.Run("rwatch-loop", func(b *testing.B) { run(b, side{code: loopCode()}, side{code: loopCode(), setup: read}) })
}

// GDB removes and reinserts every breakpoint around each stop.
func BenchmarkBreakpointToggle(b *testing.B) {
	m := newMachine(b, countLoop)
	must(b, m.AddBreakpoint(codeBase+3, false))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		must(b, m.RemoveBreakpoint(codeBase+3, false))
		must(b, m.AddBreakpoint(codeBase+3, false))
	}
}

// BenchmarkWatchMiss: a write watchpoint's page written 1000 times a run
// next to the watched bytes (each write faults and runs in the twin),
// against the same run without the watchpoint. Reports the cost of one
// such write.
func BenchmarkWatchMiss(b *testing.B) {
	code := []byte{
		0x48, 0xc7, 0xc1, 0xe8, 0x03, 0x00, 0x00, // 10000: mov rcx, 1000
		0x48, 0x89, 0x0c, 0x25, 0x00, 0x01, 0x30, 0x00, // 10007: mov [0x300100], rcx
		0x48, 0xff, 0xc9, // 1000f: dec rcx
		0x75, 0xf3, // 10012: jnz 0x10007
		0xf4, // 10014: hlt
	}
	base, watched := newMachine(b, code), newMachine(b, code)
	must(b, watched.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	one := func(m *Machine) time.Duration {
		t0 := time.Now()
		must(b, m.SetReg(arch.RIP, codeBase))
		if s := m.Run(); s.Reason != StopHalt {
			b.Fatalf("stop %+v", s)
		}
		return time.Since(t0)
	}
	var tb, tw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb += one(base)
		tw += one(watched)
	}
	if st := watched.WatchStats(); st.Demoted != 0 || st.Faults != uint64(b.N)*1000 {
		b.Fatalf("stats %+v", st)
	}
	b.ReportMetric(float64(tw-tb)/float64(b.N)/1000, "ns/miss")
	b.ReportMetric(float64(tb)/float64(b.N)/1000, "ns/plain-store")
}

// syncLoopCode is a loop whose block the analysis instruments: the first
// load (every block's first memory instruction), and the second and third
// (their base register changed since the first, and add and sub set the
// flags) are sync points (7 instructions per iteration).
func syncLoopCode() []byte {
	code := []byte{
		0x48, 0xc7, 0xc1, 0, 0, 0, 0, // 10000: mov rcx, slowIters*4
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x30, 0x00, // 10007: mov rbx, 0x300000
		0x48, 0x8b, 0x03, // 1000e: mov rax, [rbx]       <- sync point
		0x48, 0x83, 0xc3, 0x08, // 10011: add rbx, 8
		0x48, 0x8b, 0x13, // 10015: mov rdx, [rbx]      <- sync point
		0x48, 0x83, 0xeb, 0x08, // 10018: sub rbx, 8
		0x48, 0x8b, 0x33, // 1001c: mov rsi, [rbx]      <- sync point
		0x48, 0xff, 0xc9, // 1001f: dec rcx
		0x75, 0xea, // 10022: jnz 0x1000e
		0xf4, // 10024: hlt
	}
	binary.LittleEndian.PutUint32(code[3:], slowIters*4)
	return code
}

// pushLoopCode saves and restores two registers per iteration, like a
// prologue and epilogue in one block: all four are sync points (6
// instructions per iteration).
func pushLoopCode() []byte {
	code := []byte{
		0x48, 0xc7, 0xc1, 0, 0, 0, 0, // 10000: mov rcx, slowIters*4
		0x53,             // 10007: push rbx      <- sync point
		0x56,             // 10008: push rsi      <- sync point
		0x5e,             // 10009: pop rsi       <- sync point
		0x5b,             // 1000a: pop rbx       <- sync point
		0x48, 0xff, 0xc9, // 1000b: dec rcx
		0x75, 0xf7, // 1000e: jnz 0x10007
		0xf4, // 10010: hlt
	}
	binary.LittleEndian.PutUint32(code[3:], slowIters*4)
	return code
}

// BenchmarkSyncPoints: with SetExactFaults, the steady-state cost of sync
// points (instructions with a deleted code hook compiled in) against raw
// libunicorn.
func BenchmarkSyncPoints(b *testing.B) {
	for _, c := range []struct {
		name   string
		code   []byte
		perIt  float64
		points int
	}{
		{"load", loadLoopCode(), 3, 1},
		{"loads", syncLoopCode(), 7, 3},
		{"pushes", pushLoopCode(), 6, 4},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := newMachine(b, c.code)
			m.SetExactFaults(true)
			must(b, m.SetReg(arch.RIP, codeBase))
			if s := m.Run(); s.Reason != StopHalt {
				b.Fatalf("stop %+v", s)
			}
			if m.InstrumentedBlocks() == 0 {
				b.Fatal("the loop's block was not instrumented")
			}
			var tr, tm time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				must(b, rawRun(c.code))
				tr += time.Since(t0)
				must(b, m.SetReg(arch.RIP, codeBase))
				t0 = time.Now()
				if s := m.Run(); s.Reason != StopHalt {
					b.Fatalf("stop %+v", s)
				}
				tm += time.Since(t0)
			}
			b.ReportMetric(float64(tm)/float64(tr), "ratio")
			iters := float64(slowIters * 4)
			if c.name == "load" {
				iters = loopIters * 2 / 3
			}
			n := float64(b.N) * iters * c.perIt
			b.ReportMetric(n/tr.Seconds()/1e6, "base-Minsn/s")
		})
	}
}

// blocksCode is n blocks of four instructions, each ending in a jump to
// the next, then hlt: every block is translated once and run once.
func blocksCode(n int, block []byte) []byte {
	var code []byte
	for i := 0; i < n; i++ {
		code = append(code, block...)
		code = append(code, 0xeb, 0x00) // jmp to the next block
	}
	return append(code, 0xf4)
}

// BenchmarkTranslate: code that runs once, so that translation dominates,
// against raw libunicorn: the default machine, and with SetExactFaults
// (a call into Go per translated block of two or more instructions, and
// a second translation of the blocks that need sync points). Both sides
// open an engine, map, run and close it (ours: New, Map..., Run, Close).
func BenchmarkTranslate(b *testing.B) {
	const n = 3000
	for _, c := range []struct {
		name  string
		block []byte
	}{
		{"alu", []byte{0x48, 0xff, 0xc0, 0x48, 0xff, 0xc3, 0x48, 0x01, 0xd8}},                            // inc rax; inc rbx; add rax, rbx
		{"loads", []byte{0x48, 0x8b, 0x04, 0x24, 0x48, 0x8b, 0x4c, 0x24, 0x08, 0x48, 0x01, 0xc8}},        // mov rax,[rsp]; mov rcx,[rsp+8]; add rax,rcx
		{"instrumented", []byte{0x48, 0x8b, 0x04, 0x24, 0x48, 0x01, 0xc8, 0x48, 0x8b, 0x4c, 0x24, 0x08}}, // mov rax,[rsp]; add rax,rcx; mov rcx,[rsp+8] (flags)
	} {
		for _, exact := range []bool{false, true} {
			name := c.name
			if exact {
				name += "-exact"
			}
			b.Run(name, func(b *testing.B) {
				code := blocksCode(n, c.block)
				var tr, tm time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					must(b, rawRun(code))
					tr += time.Since(t0)
					t0 = time.Now()
					m, err := New()
					must(b, err)
					must(b, m.Map(codeBase, codeSize, arch.PermRX))
					must(b, m.Map(stackBase, stackSize, arch.PermRW))
					must(b, m.Map(dataBase, dataSize, arch.PermRW))
					if _, err := m.WriteMemory(codeBase, code); err != nil {
						b.Fatal(err)
					}
					must(b, m.SetReg(arch.RSP, stackTop))
					must(b, m.SetReg(arch.RIP, codeBase))
					m.SetExactFaults(exact)
					if s := m.Run(); s.Reason != StopHalt {
						b.Fatalf("stop %+v", s)
					}
					m.Close()
					tm += time.Since(t0)
				}
				b.ReportMetric(float64(tm)/float64(tr), "ratio")
				b.ReportMetric(float64(tr.Nanoseconds())/float64(b.N)/n, "base-ns/block")
				b.ReportMetric(float64(tm.Nanoseconds())/float64(b.N)/n, "ns/block")
			})
		}
	}
}
