package qemu

import (
	"testing"
	"time"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// The proxy's cost: the same operations against qemu-system, once
// through rspstub and once straight to QEMU's gdbstub. Compare with
//
//	go test -run XXX -bench . ./emulator/qemu/
func benchClient(b *testing.B, proxied bool) *rsp.Client {
	kernel := buildGuest(b)
	argv := testkit.QEMUSystemArgs(kernel, 1)
	if proxied {
		return startStub(b, argv...).dial(b)
	}
	needTool(b, argv[0])
	p, err := Launch(argv, LaunchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop(0) })
	var c *rsp.Client
	for i := 0; i < 250; i++ { // QEMU creates its socket before it listens
		if c, err = rsp.Dial(p.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func benchRead(b *testing.B, proxied bool) {
	c := benchClient(b, proxied)
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, err := c.ReadMemory(0x100000, buf); n != len(buf) {
			b.Fatalf("read %d: %v", n, err)
		}
	}
}

func benchStep(b *testing.B, proxied bool) {
	c := benchClient(b, proxied)
	tick := symbol(b, guestSymbols(b), "tick")
	if err := c.SetBreakpoint(rsp.BreakHardware, tick, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Continue(); err != nil {
		b.Fatal(err)
	}
	if err := c.RemoveBreakpoint(rsp.BreakHardware, tick, 1); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st, err := c.Step(); err != nil || st.Signal != rsp.SIGTRAP {
			b.Fatalf("step: %+v %v", st, err)
		}
	}
}

func BenchmarkReadMemoryDirect(b *testing.B)  { benchRead(b, false) }
func BenchmarkReadMemoryProxied(b *testing.B) { benchRead(b, true) }
func BenchmarkStepDirect(b *testing.B)        { benchStep(b, false) }
func BenchmarkStepProxied(b *testing.B)       { benchStep(b, true) }
