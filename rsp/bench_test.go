package rsp

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"testing"
)

// Benchmarks through the Client against our Server on the test target
// over loopback TCP: the figures a comparison with gdbserver (driven by
// the same Client) needs.
//
//	go test ./rsp -run XXX -bench BenchmarkServer -benchtime 2s

const benchBase = 0x10000000

// benchSize is the patterned region at benchBase.
const benchSize = 4 << 20

func benchClient(b testing.TB) *Client {
	b.Helper()
	tt := newTestTarget()
	data := make([]byte, benchSize)
	for i := range data {
		// loop.c's pattern: no runs, every byte value (so 1/64 of the
		// bytes need escaping in binary).
		data[i] = byte(uint32(i)*167 + uint32(i)>>9)
	}
	tt.regions = append(tt.regions, testRegion{
		MemoryRegion{Start: benchBase, Size: benchSize, Read: true, Write: true, Name: "bench"}, data})
	conn, _, _ := startPipe(b, tt)
	c, err := NewClient(conn, WithClientLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkServerRoundTrip is the latency of one small request/reply
// (qC), the floor for any debugger interaction.
func BenchmarkServerRoundTrip(b *testing.B) {
	c := benchClient(b)
	b.ReportAllocs()
	for b.Loop() {
		c.mu.Lock()
		rep, err := c.exchange("qC")
		c.mu.Unlock()
		if err != nil || len(rep) == 0 {
			b.Fatal(rep, err)
		}
	}
}

// BenchmarkServerReadRegister is one `p` round trip.
func BenchmarkServerReadRegister(b *testing.B) {
	c := benchClient(b)
	var buf [8]byte
	for b.Loop() {
		if err := c.ReadRegister(AMD64RIP, buf[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerReadMemory reads 4 MiB of patterned memory with `m`
// (hex) and with `x` (binary), in packet-sized pieces; throughput is in
// MB/s.
func BenchmarkServerReadMemory(b *testing.B) {
	for _, mode := range []struct {
		name   string
		binary bool
	}{{"m", false}, {"x", true}} {
		b.Run(mode.name, func(b *testing.B) {
			c := benchClient(b)
			buf := make([]byte, benchSize)
			chunk := c.PacketSize() / 2
			if mode.binary {
				chunk = c.PacketSize() - 16
			}
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				for off := 0; off < len(buf); {
					n, err := c.ReadMemoryPacket(mode.binary, benchBase+uint64(off), buf[off:min(off+chunk, len(buf))])
					if err != nil || n == 0 {
						b.Fatal(n, err)
					}
					off += n
				}
			}
		})
	}
}

// BenchmarkServerReadMemoryAs reads the 4 MiB region with ReadMemoryAs
// (maximum-size packets, two in flight in no-ack mode), as the perf
// harness's bulk-read rows do: `m` and `x` (issue 17: `x` at 1 GiB/s or
// more).
func BenchmarkServerReadMemoryAs(b *testing.B) {
	for _, mode := range []struct {
		name   string
		binary bool
	}{{"m", false}, {"x", true}} {
		b.Run(mode.name, func(b *testing.B) {
			c := benchClient(b)
			buf := make([]byte, benchSize)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				n, err := c.ReadMemoryAs(mode.binary, benchBase, buf)
				if err != nil || n != len(buf) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// BenchmarkServerMonitor is a monitor command whose output is 5 MiB
// (the test target's "huge"), streamed as O packets and decoded by
// Client.Monitor: the transport of a 10,000-frame `monitor bt -json`.
func BenchmarkServerMonitor(b *testing.B) {
	c := benchClient(b)
	out, err := c.Monitor("huge")
	if err != nil || len(out) < 5<<20-100 {
		b.Fatal(len(out), err)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Monitor("huge"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGDBServer runs the same client measurements against GDB's
// gdbserver serving a native /bin/true (stopped at its entry), reading
// the 64 KiB below its stack pointer: compare with BenchmarkServer*.
func BenchmarkGDBServer(b *testing.B) {
	c, err := Dial(testkit.StartPeer(b, "gdbserver", "--once", testkit.PeerAddr, "/bin/true"), WithClientLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("RoundTrip", func(b *testing.B) {
		for b.Loop() {
			c.mu.Lock()
			_, err := c.exchange("qC")
			c.mu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadRegister", func(b *testing.B) {
		var buf [8]byte
		for b.Loop() {
			if err := c.ReadRegister(AMD64RIP, buf[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadMemory/m", func(b *testing.B) {
		rsp, err := c.ReadRegisterUint("rsp")
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		base := (rsp &^ 0xfff) - uint64(len(buf))
		chunk := c.PacketSize() / 2
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			for off := 0; off < len(buf); {
				n, err := c.ReadMemoryPacket(false, base+uint64(off), buf[off:min(off+chunk, len(buf))])
				if err != nil || n == 0 {
					b.Fatal(n, err)
				}
				off += n
			}
		}
	})
}
