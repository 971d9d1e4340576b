package tests

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// Fault injection on the connection (issue 9): clients that vanish at
// the worst moments, garbage, oversized packets, bad checksums, unknown
// packets and floods of Ctrl-C. After each fault the next client must see
// the same guest, and be able to run and stop it again.

// TestReliabilityClientVanishes drops the connection mid-packet,
// mid-continue, during monitor output and right after a Ctrl-C.
func TestReliabilityClientVanishes(t *testing.T) {
	stub, _ := spinStub(t)
	s0 := newState(t, stub.Addr)
	require.Regexp(t, `^T02`, s0.Stop, "after an interrupt the stop is %q, want T02", s0.Stop)

	t.Run("mid-packet", func(t *testing.T) {
		for _, half := range []string{"$m1000,4", "$m1000,4#", "$m1000,4#6", "$g", "$qXfer:features:read:target.xml:0,", "$M1000,4:0000", "$c", "$vCont;", "$}"} {
			c := rawDial(t, stub.Addr)
			c.write("+" + half)
			c.Close()
			sameState(t, "after "+half, newState(t, stub.Addr), s0)
		}
	})

	t.Run("mid-continue", func(t *testing.T) {
		c := rawDial(t, stub.Addr)
		c.write("+" + frame("c"))
		time.Sleep(300 * time.Millisecond)
		c.Close()
		s1 := newState(t, stub.Addr)
		require.Regexp(t, `^T02`, s1.Stop, "after the client left mid-run the stop is %q, want T02 (interrupted)", s1.Stop)
		require.NotEqual(t, s0.Regs, s1.Regs, "the guest did not run during the continue (registers unchanged)")
		// Stopped for good: a second look, later, sees the same.
		time.Sleep(200 * time.Millisecond)
		sameState(t, "second client after the run", newState(t, stub.Addr), s1)
		s0 = s1
	})

	t.Run("during-monitor-output", func(t *testing.T) {
		// memmap prints one line per region: many O packets. Read the
		// first and leave.
		for i := 0; i < 5; i++ {
			c := rawDial(t, stub.Addr)
			c.write("+")
			c.send("qRcmd," + hexString("memmap"))
			p := c.reply()
			require.True(t, isOutput(p), "monitor memmap: first reply %q, want O output", p)
			c.Close()
			sameState(t, "after leaving during monitor output", newState(t, stub.Addr), s0)
		}
		// Gone before the output starts: the stub's writes fail part
		// way through (the first reaches a closed socket, the next ones
		// meet its reset).
		for i := 0; i < 20; i++ {
			c := rawDial(t, stub.Addr)
			// The stub may already have refused this connection (the
			// last one's session was still ending): a failed write is
			// then the client's news, not the stub's failure; the state
			// checks below are what counts.
			c.conn.Write([]byte("+" + frame("QStartNoAckMode") + frame("qRcmd,"+hexString([]string{"memmap", "help", "peb", "bt -full"}[i%4]))))
			c.Close()
		}
		sameState(t, "after leaving before monitor output", newState(t, stub.Addr), s0)
		// The monitor still answers in full.
		cl := dial(t, stub.Addr)
		out, err := cl.Monitor("memmap")
		cl.Close()
		require.NoError(t, err, "monitor memmap after the faults")
		require.GreaterOrEqual(t, strings.Count(out, "\n"), 5, "monitor memmap's lines after the faults:\n%s", out)
	})

	t.Run("right-after-ctrl-c", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			c := rawDial(t, stub.Addr)
			c.write("+" + frame("c"))
			time.Sleep(100 * time.Millisecond)
			c.write("\x03")
			c.Close()
			s1 := newState(t, stub.Addr)
			require.Regexp(t, `^T02`, s1.Stop, "stop %q after a Ctrl-C and a vanished client, want T02", s1.Stop)
			time.Sleep(100 * time.Millisecond)
			sameState(t, "a later client", newState(t, stub.Addr), s1)
			s0 = s1
		}
	})

	// The guest still runs and stops for a normal client.
	c := dial(t, stub.Addr)
	defer c.Close()
	sameState(t, "the Go client", clientState(t, c), s0)
	runAndInterrupt(t, c, 100*time.Millisecond)
	runAndInterrupt(t, c, 50*time.Millisecond)
}

func hexString(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

// resync ends whatever half packet garbage left open, then drops every
// reply the garbage caused.
func resync(c *rawConn) {
	c.write("#00$#00#00")
	c.drain(300 * time.Millisecond)
	c.takeAcks()
}

// TestReliabilityGarbage feeds one session noise, random packets, bad
// checksums, oversized and unknown packets and Ctrl-C floods; the
// session survives each and answers `?` and `g` as before.
func TestReliabilityGarbage(t *testing.T) {
	stub, pid := spinStub(t)
	c := rawDial(t, stub.Addr)
	defer c.Close()
	c.write("+")
	c.request("qSupported:swbreak+")
	s0 := rawState(t, c)
	rng := rand.New(rand.NewSource(9))
	faults := 0

	t.Run("noise", func(t *testing.T) {
		// 256 KiB of random bytes between packets. '$' would start
		// packets (a random one could even be a valid `k`) and 0x03 is
		// an interrupt: both are tested on their own below.
		noise := make([]byte, 256<<10)
		rng.Read(noise)
		for i, b := range noise {
			if b == '$' || b == 3 {
				noise[i] = '~'
			}
		}
		c.write(string(noise))
		faults += len(noise)
		resync(c)
		sameState(t, "after noise", rawState(t, c), s0)
	})

	t.Run("random-packets", func(t *testing.T) {
		// Well-framed packets with random arguments for the read-only
		// handlers: every one gets an answer (data, Exx or empty).
		prefixes := []string{"m", "x", "p", "g", "H", "T", "qXfer:", "qXfer:features:read:", "qXfer:libraries:read::",
			"vFile:", "vFile:open:", "vFile:pread:", "vFile:fstat:", "qMemoryRegionInfo:", "qRegisterInfo",
			"qThreadExtraInfo,", "qGetTIBAddr:", "qFileLoadAddress:", "Z9", "z9", "vCont?", "jThreadsInfo", "?"}
		const alphabet = "0123456789abcdefABCDEF,:;-+.=xyz/\\ \x00\x7f\xff"
		for i := 0; i < 2000; i++ {
			p := []byte(prefixes[rng.Intn(len(prefixes))])
			for n := rng.Intn(40); n > 0; n-- {
				p = append(p, alphabet[rng.Intn(len(alphabet))])
			}
			c.send(string(p))
			_, err := c.read(10 * time.Second)
			require.NoError(t, err, "no reply to random packet %d %q", i, p)
			faults++
		}
		sameState(t, "after random packets", rawState(t, c), s0)
	})

	t.Run("bad-checksums", func(t *testing.T) {
		for i := 0; i < 200; i++ {
			good := frame("?")
			bad := good[:len(good)-2] + "00"
			if i%2 == 1 {
				bad = good[:len(good)-2] + "zz"
			}
			c.write(bad)
			faults++
		}
		c.write(frame("?"))
		st := c.reply()
		acks := string(c.takeAcks())
		require.Equal(t, 200, strings.Count(acks, "-"), "the '-' drawn by 200 bad checksums (acks %q)", acks)
		require.Equal(t, s0.Stop, st, "? after bad checksums")
		// The '-' asks for the retransmission of the last reply.
		c.write("-")
		require.Equal(t, st, c.reply(), "retransmission after '-'")
	})

	t.Run("oversized", func(t *testing.T) {
		big := "m" + strings.Repeat("0", rsp.DefaultPacketSize+100)
		require.Equal(t, "E16", c.request(big), "a packet over PacketSize")
		// Run-length input that expands past PacketSize.
		rl := "m" + strings.Repeat("0*~", rsp.DefaultPacketSize/90) // '~' = 97 more each
		require.Equal(t, "E16", c.request(rl), "a run-length packet over PacketSize")
		faults += 2
		sameState(t, "after oversized packets", rawState(t, c), s0)
	})

	t.Run("unknown-packets", func(t *testing.T) {
		// "!", R and vRun (extended mode, restart) are served: the
		// restart tests cover them (rsp.TestExtendedRestart,
		// TestRestartLoopGDB).
		for _, p := range []string{"vMustReplyEmpty", "qZZZ", "QZZZ:1", "_x", "A", "b", "B", "d", "e", "i", "t", "y",
			"vAttach;1", "qTStatus", "QNonStop:1", "\x7f", "vFile:pwrite:0,0,", "vFile:unlink:2f6574632f706173737764"} {
			rep := c.request(p)
			faults++
			switch {
			case strings.HasPrefix(p, "vFile:"):
				assert.Regexp(t, `^F-1,`, rep, "%q: reply %q, want F-1,errno", p, rep)
			default:
				assert.Empty(t, rep, "unknown packet %q: want the empty reply", p)
			}
		}
		sameState(t, "after unknown packets", rawState(t, c), s0)
	})

	t.Run("extreme-arguments", func(t *testing.T) {
		// Numbers at the edges for every handler that takes one, on the
		// real target. Writes go to unmapped memory or have the wrong
		// length; breakpoints and watchpoints are removed again.
		for _, p := range []string{
			"mffffffffffffffff,ffffffffffffffff", "m0,ffffffffffffffff", "mfffffffffffffffe,10", "m10000000000000000,1",
			"xffffffffffffffff,ffffffff", "x0,0", "x1000,7fffffffffffffff",
			"M0,4:00000000", "Mffffffffffffffff,2:0000", "M0,ffffffffffffffff:00", "X0,4:abcd", "Xfffffffffffffff0,0:",
			"G00", "P0=00", "Pffffffff=00", "P7fffffff=0000000000000000", "p7fffffff", "pffffffffffffffff", "p-1",
			"Z0,ffffffffffffffff,1", "z0,ffffffffffffffff,1", "Z1,0,1", "z1,0,1",
			"Z2,0,ffffffff", "Z2,1000,0", "z2,1000,0", "Z2,fffffffffffffff8,10", "z2,fffffffffffffff8,10",
			"Z3,ffffffffffffffff,8", "z3,ffffffffffffffff,8", "Z4,0,8", "z4,0,8", "Z9,0,1",
			"qXfer:features:read:target.xml:ffffffffffffffff,ffffffff", "qXfer:features:read:target.xml:0,0",
			"qXfer:libraries:read::7fffffffffffffff,1000", "qXfer:threads:read::0,ffffffffffffffff",
			"qXfer:exec-file:read:ffffffff:0,100", "qXfer:memory-map:read::0,100",
			"vFile:pread:0,ffffffffffffffff,ffffffffffffffff", "vFile:pread:ffffffffffffffff,1,0", "vFile:fstat:ffffffff",
			"vFile:close:ffffffffffffffff", "vFile:open:,0,0", "vFile:open:zz,0,0", "vFile:setfs:ffffffff",
			"qMemoryRegionInfo:ffffffffffffffff", "qMemoryRegionInfo:0", "qRegisterInfoffffffff", "qRegisterInfo7fffffffffffffff",
			"qThreadExtraInfo,ffffffff", "qThreadExtraInfo,p1.-1", "qGetTIBAddr:ffffffffffffffff", "qGetTIBAddr:-1",
			"Hgffffffff", "Hg-1", "Hcp1.-1", "Hg0", "Tffffffff", "T-1", "qFileLoadAddress:" + strings.Repeat("41", 8000),
			"qRcmd," + strings.Repeat("41", 8000), "qRcmd,zz", "qRcmd,", "qSupported:" + strings.Repeat("x+;", 5000),
			"vCont;r5,1", "vCont;Czz", "vCont;c:ffffffff;c:fffffffe;c:7;c:8;c:9;c:a;c:b;c:c;c:d", "vCont;x", "Cff;zz", "S00;zz",
		} {
			rep := c.request(p)
			faults++
			if strings.HasPrefix(p, "M") || strings.HasPrefix(p, "X") || strings.HasPrefix(p, "G") || strings.HasPrefix(p, "P") {
				if !strings.HasSuffix(p, ":") {
					assert.NotEqual(t, "OK", rep, "%.60q was accepted", p)
				}
			}
		}
		sameState(t, "after extreme arguments", rawState(t, c), s0)
		// No watchpoint or breakpoint was left behind: a run ends only
		// by the interrupt.
		c.send("c")
		time.Sleep(100 * time.Millisecond)
		c.write("\x03")
		st := c.reply()
		require.Regexp(t, `^T02`, st, "stop after the extreme arguments: %q, want T02", st)
		s0 = rawState(t, c)
	})

	t.Run("endless-range-step", func(t *testing.T) {
		// A range step over the whole address space never leaves its
		// range: only Ctrl-C ends it, and it must.
		c.send("vCont;r0,ffffffffffffffff:1")
		time.Sleep(200 * time.Millisecond)
		sent := time.Now()
		c.write("\x03")
		st, err := c.read(15 * time.Second)
		require.NoError(t, err, "no stop after Ctrl-C during an endless range step")
		require.Regexp(t, `^T02`, st, "stop %q, want T02", st)
		t.Logf("Ctrl-C stopped an endless range step in %v", time.Since(sent).Round(time.Millisecond))
		s0 = rawState(t, c)
	})

	t.Run("ctrl-c-flood-stopped", func(t *testing.T) {
		c.write(strings.Repeat("\x03", 1000))
		faults += 1000
		sameState(t, "after 1,000 Ctrl-C while stopped", rawState(t, c), s0)
		// Nothing came back for them, and the guest did not move.
		require.Zero(t, c.drain(200*time.Millisecond), "the bytes the stub sent in answer to Ctrl-C while stopped")
	})

	t.Run("ctrl-c-flood-running", func(t *testing.T) {
		c.send("c")
		time.Sleep(100 * time.Millisecond)
		c.write(strings.Repeat("\x03", 1000))
		faults += 1000
		st := c.reply()
		require.Regexp(t, `^T02`, st, "stop after the flood: %q, want T02", st)
		// One stop reply for the whole flood.
		require.Zero(t, c.drain(300*time.Millisecond), "the bytes the stub sent after the stop")
		s1 := rawState(t, c)
		require.Equal(t, st, s1.Stop, "? after the flood")
		require.NotEqual(t, s0.Regs, s1.Regs, "the guest did not run")
		s0 = s1
		// And it runs and stops again.
		c.send("c")
		time.Sleep(100 * time.Millisecond)
		c.write("\x03")
		require.Regexp(t, `^T02`, c.reply(), "stop after one more Ctrl-C")
		s0 = rawState(t, c)
	})

	t.Run("ctrl-c-flood-memory", func(t *testing.T) {
		// Floods of 500,000 Ctrl-C while running: one interrupt each,
		// not one goroutine per byte (which once cost 74 MB).
		before := readProc(t, pid)
		flood := strings.Repeat("\x03", 500_000)
		for i := 0; i < 10; i++ {
			c.send("c")
			time.Sleep(20 * time.Millisecond)
			c.write(flood)
			faults += len(flood)
			st := c.reply()
			require.Regexp(t, `^T02`, st, "stop after the flood: %q", st)
		}
		time.Sleep(100 * time.Millisecond)
		after := readProc(t, pid)
		t.Logf("10 floods of 500,000 Ctrl-C: stub before %v, after %v", before, after)
		// Measured: +0.1 MiB; +13 to +19 MiB with a goroutine per byte.
		assert.LessOrEqual(t, max(after.RSSKiB-before.RSSKiB, after.HWMKiB-before.HWMKiB), 4<<10, "the stub's RSS growth (KiB) over the floods")
		s0 = rawState(t, c)
	})

	t.Run("unterminated-packet", func(t *testing.T) {
		// A packet that never ends is cut off (the session ends) instead
		// of being buffered forever.
		chunk := strings.Repeat("a", 64<<10)
		c.write("$m")
		for i := 0; i < 32; i++ { // 2 MiB without '#'
			if _, err := c.conn.Write([]byte(chunk)); err != nil {
				break // the stub hung up early: fine
			}
		}
		faults++
		require.NoError(t, c.expectClosed(10*time.Second))
		sameState(t, "a new client after the cut-off", newState(t, stub.Addr), s0)
	})
	t.Logf("faults injected: %d (bytes of noise, packets, Ctrl-C bytes)", faults)
}

// TestReliabilitySecondClient: a second client while one is attached is
// refused with a message naming the reason; the first session goes on.
func TestReliabilitySecondClient(t *testing.T) {
	stub, _ := spinStub(t)
	a := dial(t, stub.Addr)
	defer a.Close()
	s0 := clientState(t, a)

	refused := func(what string) {
		t.Helper()
		_, err := rsp.Dial(stub.Addr, rsp.WithTimeout(10*time.Second))
		require.ErrorContains(t, err, "another debugger is already attached", "%s: second client: want a refusal naming the attached debugger", what)
		b := rawDial(t, stub.Addr)
		defer b.Close()
		b.write("+")
		b.send("qSupported")
		rep, err := b.read(10 * time.Second)
		require.NoError(t, err, "%s: raw second client", what)
		require.Equal(t, "E.rspstub: another debugger is already attached to this target", rep, "%s: raw second client", what)
		require.NoError(t, b.expectClosed(5*time.Second), what)
	}
	refused("first client stopped")
	sameState(t, "first client after the refusal", clientState(t, a), s0)

	// While the first client's guest runs.
	done := make(chan error, 1)
	go func() {
		st, err := a.Continue()
		if err == nil {
			assert.Equal(t, rsp.SIGINT, st.Signal, "stop %+v, want SIGINT", st)
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	refused("first client running")
	a.Interrupt()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		require.FailNow(t, "the first client's guest did not stop")
	}
	s1 := clientState(t, a)

	// Once the first client detaches, the next one is served at once.
	require.NoError(t, a.Detach())
	b := dial(t, stub.Addr)
	defer b.Close()
	sameState(t, "the next client", clientState(t, b), s1)
	assert.Contains(t, stub.Stderr(), "refusing a second debugger", "the stub's log does not mention the refusal:\n%s", stub.Stderr())
}

// TestReliabilityChattyGuest: a guest that prints without pause fills
// the connection with O packets. A client that stops reading, or leaves
// while the stub is blocked writing to it, must not wedge the stub.
func TestReliabilityChattyGuest(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/chatty.c", testkit.MinGW, "-O2")
	stub := testkit.StartStub(t, exe)

	// awaitStop reads until the stop reply, counting O packets.
	awaitStop := func(c *rawConn) (string, int) {
		t.Helper()
		outputs := 0
		for i := 0; i < 10_000_000; i++ {
			p, err := c.read(20 * time.Second)
			require.NoError(t, err, "no stop reply after %d O packets", outputs)
			if !isOutput(p) {
				return p, outputs
			}
			outputs++
		}
		require.FailNow(t, "no end to the output")
		return "", 0
	}

	t.Run("slow-reader", func(t *testing.T) {
		c := rawDial(t, stub.Addr)
		defer c.Close()
		c.write("+")
		c.request("qSupported:swbreak+")
		c.send("c")
		time.Sleep(time.Second) // the stub's writes block meanwhile
		c.write("\x03")
		st, n := awaitStop(c)
		require.Regexp(t, `^T02`, st, "stop %q after Ctrl-C, want T02", st)
		t.Logf("stopped after %d O packets", n)
		require.Equal(t, st, c.request("?"), "?")
	})

	for _, readFor := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("vanish-reading-%v", readFor), func(t *testing.T) {
			c := rawDial(t, stub.Addr)
			c.write("+")
			c.request("qSupported:swbreak+")
			c.send("c")
			if readFor > 0 {
				end := time.Now().Add(readFor)
				for time.Now().Before(end) {
					p := c.reply()
					require.True(t, isOutput(p), "reply %q while running", p)
				}
			} else {
				time.Sleep(time.Second) // blocked on a full connection
			}
			c.Close()
			s1 := newState(t, stub.Addr)
			require.Regexp(t, `^T02`, s1.Stop, "stop %q after the client left mid-output, want T02", s1.Stop)
			time.Sleep(200 * time.Millisecond)
			sameState(t, "a later client", newState(t, stub.Addr), s1)
		})
	}

	var console bytes.Buffer
	c, err := rsp.Dial(stub.Addr, rsp.WithTimeout(20*time.Second), rsp.WithConsole(&console))
	require.NoError(t, err)
	defer c.Close()
	runAndInterrupt(t, c, 200*time.Millisecond)
	require.Contains(t, console.String(), "chatty line", "the console got no guest output: %.200q", console.String())
}
