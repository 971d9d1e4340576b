package rsp

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The tests of package rsp start their servers in two ways, the
// in-package stand-ins for rsp/rsptest (which imports rsp: an import
// cycle here): startPipe serves one session on a loopback TCP connection
// (testkit.TCPPair), serveTCP serves a listener many clients can dial.

// startPipe serves tg (one session, ServeConn) on one end of a loopback
// TCP connection and returns the other end, the server and the channel
// ServeConn's error arrives on.
func startPipe(t testing.TB, tg Target, opts ...Option) (net.Conn, *Server, chan error) {
	t.Helper()
	srv := NewServer(tg, append([]Option{WithLogger(quietLogger())}, opts...)...)
	a, b := testkit.TCPPair(t)
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(a) }()
	return b, srv, done
}

// served is a server on a loopback port (serveTCP).
type served struct {
	addr string
	srv  *Server
	rec  *recordingListener // what clients sent
	done chan error         // Serve's error
}

// serveTCP serves tg on a loopback port (Listen, Serve) and records what
// clients send; the server is closed when the test ends.
func serveTCP(t testing.TB, tg Target, opts ...Option) *served {
	t.Helper()
	l, err := Listen("127.0.0.1:0", quietLogger())
	require.NoError(t, err)
	s := &served{addr: l.Addr().String(), rec: &recordingListener{Listener: l}, done: make(chan error, 1)}
	s.srv = NewServer(tg, append([]Option{WithLogger(quietLogger())}, opts...)...)
	go func() { s.done <- s.srv.Serve(s.rec) }()
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// rawPeer speaks RSP by hand, for tests that check exact bytes.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
	c    *codec
}

func newRawPeer(t testing.TB, conn net.Conn) *rawPeer {
	return &rawPeer{t: t, conn: conn, c: newCodecSizes(conn, maxClientReply, 1<<16)}
}

func frame(payload string) string {
	var sum byte
	for i := 0; i < len(payload); i++ {
		sum += payload[i]
	}
	return fmt.Sprintf("$%s#%02x", payload, sum)
}

func (p *rawPeer) send(raw string) {
	p.t.Helper()
	p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(p.conn, raw)
	require.NoError(p.t, err, "write %q", raw)
}

// recv returns the next packet's payload (acks are sent when in ack mode).
func (p *rawPeer) recv() string {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		ev, err := p.c.readEvent()
		require.NoError(p.t, err, "read")
		if ev == evPacket {
			return string(p.c.pkt)
		}
	}
}

// ask sends a packet and returns the reply.
func (p *rawPeer) ask(payload string) string {
	p.t.Helper()
	p.send(frame(payload))
	return p.recv()
}

func TestServerPackets(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	rax := "8877665544332211"
	tests := []struct {
		req, want string
	}{
		{"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386", "PacketSize=100000;QStartNoAckMode+;qXfer:features:read+;qXfer:threads:read+;vContSupported+;QThreadSuffixSupported+;QListThreadsInStopReply+;swbreak+;ConditionalBreakpoints+;hwbreak+;qXfer:libraries:read+;qXfer:memory-map:read+;qXfer:exec-file:read+;multiprocess+"},
		{"vMustReplyEmpty", ""},
		{"qTStatus", ""},
		{"Hg0", "OK"},
		{"Hg7", "E16"},
		{"Hx1", "E16"},
		{"T1", "OK"},
		{"T2", "E16"},
		{"?", "T05thread:p2a.1;10:1010004001000000;7:00f87f0000000000;6:00f97f0000000000;"},
		{"qC", "QCp2a.1"},
		{"qfThreadInfo", "mp2a.1"},
		{"qsThreadInfo", "l"},
		{"qThreadExtraInfo,1", hexString("main, vCPU 0")},
		{"qAttached", "1"},
		{"qSymbol::", "OK"},
		{"qOffsets", ""}, // no Offsetter
		{"p0", rax},
		{"p0;thread:1;", rax},
		{"p0;thread:9;", "E0e"},
		{"p10", "1010004001000000"},
		{"pfff", "E16"},
		{"pzz", "E16"},
		{"P0=0100000000000000", "OK"},
		{"p0", "0100000000000000"},
		{"P0=01", "E16"},
		{"m140001000,4", "00010203"},
		{"m140002ffe,4", "fefe"}, // readable prefix: the region ends after 2 bytes... see below
		{"m0,4", "E0e"},
		{"m140001000", "E16"},
		{"mzz,1", "E16"},
		{"M7ff000,2:abcd", "OK"},
		{"m7ff000,2", "abcd"},
		{"M7ff000,3:abcd", "E16"},
		{"M0,1:00", "E0e"},
		{"X7ff004,0:", "OK"},
		{"x140001000,0", "OK"},
		{"Z0,140001100,1", "OK"},
		{"z0,140001100,1", "OK"},
		{"Z2,7ff000,8", "OK"},
		{"z2,7ff000,8", "OK"},
		{"Z9,0,1", ""},
		{"Z0,zz,1", "E16"},
		{"vCont?", "vCont;c;C;s;S;r"},
		{"qGetTIBAddr:1", "7ffde000"},
		{"qGetTIBAddr:5", "E16"},
		{"qMemoryRegionInfo:140001010", "start:140001000;size:2000;permissions:rx;name:" + hexString("demo.exe .text") + ";"},
		{"qMemoryRegionInfo:0", "start:0;size:7ff000;"},
		{"qMemoryRegionInfo:ffffffff00000000", "start:140003000;size:fffffffebfffd000;"},
		{"qFileLoadAddress:" + hexString(`C:\demo\demo.exe`), "140000000"},
		{"qFileLoadAddress:" + hexString(`nope`), "E02"},
		{"qXfer:exec-file:read:2a:0,100", `lC:\demo\demo.exe`},
		{"qXfer:features:read:other.xml:0,100", "E02"},
		{"qXfer:bogus:read::0,100", ""},
		{"qXfer:libraries:write::0,100", ""},
		{"vFile:setfs:0", "F0"},
		{"vFile:open:" + hexString("secret") + ",0,0", "F-1,2"},
		{"vFile:open:" + hexString(`C:\demo\demo.exe`) + ",1,0", "F-1,d"},
		{"vFile:open:" + hexString(`C:\demo\demo.exe`) + ",0,0", "F0"},
		{"vFile:pread:0,4,0", "F4;MZ}$"},
		{"vFile:pread:0,4,176e", "F2;#*"},
		{"vFile:pread:7,4,0", "F-1,9"},
		{"vFile:close:0", "F0"},
		{"vFile:close:0", "F-1,9"},
		{"vFile:unlink:00", "F-1,d"},
		{"qRegisterInfo0", "name:rax;bitsize:64;offset:0;encoding:uint;format:hex;set:General Purpose Registers;ehframe:0;dwarf:0;"},
		{"qRegisterInfo10", "name:rip;bitsize:64;offset:128;encoding:uint;format:hex;set:General Purpose Registers;ehframe:16;dwarf:16;generic:pc;"},
		{"qRegisterInfo1000", "E45"},
		{"qHostInfo", "triple:" + hexString("x86_64-pc-windows-msvc") + ";ptrsize:8;endian:little;ostype:windows;vendor:pc;"},
		{"qProcessInfo", "pid:2a;parent-pid:0;real-uid:0;real-gid:0;effective-uid:0;effective-gid:0;triple:" + hexString("x86_64-pc-windows-msvc") + ";ostype:windows;vendor:pc;endian:little;ptrsize:8;"},
		{"", ""},
		{"\x7f", ""},
	}
	// The region at 0x140001000 is 0x2000 long: a read at its end gives
	// the readable prefix.
	tests[26] = struct{ req, want string }{"m140002ffe,4", "fefe"}
	tt.regions[2].data[0x1ffe], tt.regions[2].data[0x1fff] = 0xfe, 0xfe
	for _, tc := range tests {
		assert.Equal(t, tc.want, p.ask(tc.req), tc.req)
	}
}

func hexString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%02x", s[i])
	}
	return b.String()
}

func TestServerLLDBDialect(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	require.Equal(t, "OK", p.ask("QStartNoAckMode"), "QStartNoAckMode")
	p.c.noAck = true
	for _, tc := range []struct{ req, want string }{
		{"QThreadSuffixSupported", "OK"},
		{"QListThreadsInStopReply", "OK"},
		{"QEnableErrorStrings", "OK"},
		{"x140001000,4", "\x00\x01\x02\x03"},
		{"x140001023,2", "\x23\x24"}, // '#' and '$' travel escaped
		{"m0,1", "E0e;" + hexString("memory not accessible")},
		{"p10;thread:1;", "1010004001000000"},
		{"?", "T05thread:1;10:1010004001000000;7:00f87f0000000000;6:00f97f0000000000;threads:1;"},
		{"jThreadsInfo", `[{"tid":1,"name":"main","reason":"signal","signal":5,"registers":{"16":"1010004001000000","7":"00f87f0000000000","6":"00f97f0000000000"}}]`},
	} {
		assert.Equal(t, tc.want, p.ask(tc.req), tc.req)
	}
}

func TestServerBinaryUploadDialect(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	require.True(t, strings.HasSuffix(p.ask("qSupported:binary-upload+"), ";binary-upload+"), "qSupported offers binary-upload")
	assert.Equal(t, "b\x00\x01\x02", p.ask("x140001000,3"), "x")
	assert.Equal(t, "b", p.ask("x140001000,0"), "x probe")
}

func TestServerFraming(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt, WithPacketSize(256))
	p := newRawPeer(t, conn)
	// A bad checksum is nacked; the client retransmits.
	p.send("$qC#00")
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err := io.ReadFull(p.conn, b[:])
	require.NoError(t, err)
	require.Equal(t, "-", string(b[:]), "a nack")
	require.Equal(t, "QC1", p.ask("qC"), "after nack")
	// Our '-' makes the server resend its last reply.
	p.send("-")
	require.Equal(t, "QC1", p.recv(), "retransmit")
	// Run-length encoded input: "m7ff000,1" + "0"*3 => m7ff0000000,1? Use
	// a register write whose zeros are compressed.
	p.send(frame("P0=ff0* ")) // "0* " = '0' then 3 more '0': ff0000 ... too short
	require.Equal(t, "E16", p.recv(), "short RLE P")
	p.send(frame("P0=0*+f")) // '+' = 43-29 = 14 more zeros: 16 digits
	require.Equal(t, "OK", p.recv(), "RLE P")
	require.Equal(t, "000000000000000f", p.ask("p0"), "after RLE P")
	// Escaped binary X.
	p.send(frame("X7ff010,4:}\x03}\x04}]}\x0a"))
	require.Equal(t, "OK", p.recv(), "X escaped")
	require.Equal(t, "23247d2a", p.ask("m7ff010,4"), "after X")
	// Oversized packets get an error and the session survives.
	require.Equal(t, "E16", p.ask("M7ff000,100:"+strings.Repeat("00", 0x100)), "oversized")
	require.Equal(t, "QC1", p.ask("qC"), "after oversized")
	// A bad RLE count and an RLE at the start are errors too.
	require.Equal(t, "E16", p.ask("*!"), "rle at start")
	// Garbage and acks between packets are skipped.
	p.send("+++garbage")
	require.Equal(t, "QC1", p.ask("qC"), "after garbage")
	// m replies are capped to what fits the packet size.
	require.Len(t, p.ask("m140001000,1000"), 256, "capped m: hex digits")
}

func TestServerResumeAndInterrupt(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	p.ask("qSupported:swbreak+;hwbreak+")
	// Step.
	require.Regexp(t, `^T05thread:1;10:1110004001000000;`, p.ask("vCont;s:1"), "step")
	require.Len(t, tt.lastActs, 1, "step actions")
	assert.Equal(t, AllThreads, tt.lastActs[0].Thread, "step action's thread")
	assert.True(t, tt.lastActs[0].Step, "a step action")
	// Continue to a breakpoint; the guest prints first.
	p.ask("Z0,140001100,1")
	p.send(frame("c"))
	require.Equal(t, "O"+hexString("guest says hi\n"), p.recv(), "console")
	require.Regexp(t, `^T05thread:1;10:0011004001000000;.*swbreak:;$`, p.recv(), "breakpoint stop")
	p.ask("z0,140001100,1")
	// Range step from 0x140001100 within [0x140001100, 0x140001108).
	resumes := tt.resumes
	require.Regexp(t, `^T05thread:1;10:0811004001000000;`, p.ask("vCont;r140001100,140001108:1;c"), "range step")
	require.Equal(t, 8, tt.resumes-resumes, "range step: steps taken")
	// Continue with no breakpoint runs until interrupted; the target's
	// description reaches GDB as an O packet.
	p.send(frame("vCont;c"))
	require.Equal(t, "O"+hexString("guest says hi\n"), p.recv(), "console")
	p.send("\x03")
	require.Equal(t, "O"+hexString("interrupted\n"), p.recv(), "description")
	require.Regexp(t, `^T02thread:1;`, p.recv(), "interrupt stop")
	// C/S with a signal and an address.
	require.Regexp(t, `^T05thread:1;10:0110004001000000;`, p.ask("S05;140001000"), "S")
	for _, bad := range []string{"vCont;x", "vCont;", "vCont;Czz", "vCont;r5,1", "Czz", "szz"} {
		assert.Contains(t, []string{"E16", ""}, p.ask(bad), bad)
	}
}

func TestServerMonitor(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt, WithPacketSize(512))
	p := newRawPeer(t, conn)
	p.send(frame("qRcmd," + hexString("big")))
	var out strings.Builder
	for i := 0; ; i++ {
		got := p.recv()
		if got == "OK" {
			break
		}
		require.True(t, got[0] == 'O' && len(got) <= 512, "monitor chunk %d: %d bytes %q", i, len(got), got[:min(len(got), 10)])
		out.WriteString(got[1:])
	}
	require.True(t, out.String() == hexString(strings.Repeat("0123456789abcdef", 4096)), "monitor output differs (%d hex digits)", out.Len())
	p.send(frame("qRcmd," + hexString("nope")))
	require.Equal(t, "O"+hexString("unknown monitor command \"nope\"\n"), p.recv(), "monitor error text")
	require.Equal(t, "E01", p.recv(), "monitor error")
	c, err := NewClient(conn)
	require.NoError(t, err)
	out2, err := c.Monitor("help")
	require.NoError(t, err, "client monitor")
	require.Equal(t, "commands: help, big, fail\n"+stubStatsHelp, out2, "client monitor")
}

func TestServerXfer(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	c, err := NewClient(conn, WithClientLogger(quietLogger()))
	require.NoError(t, err)
	for _, tc := range []struct{ object, annex, want string }{
		{"libraries", "", `<library name="C:\demo\demo.exe"><segment address="0x140001000"/></library>`},
		{"threads", "", `<thread id="1" name="main">vCPU 0</thread>`},
		{"memory-map", "", `<memory type="ram" start="0x7ff000" length="0x1000"/>`},
		{"features", "target.xml", `<reg name="fs_base" bitsize="64" type="int" regnum="57"`},
	} {
		doc, err := c.ReadXfer(tc.object, tc.annex)
		require.NoError(t, err, tc.object)
		assert.Contains(t, string(doc), tc.want, tc.object)
	}
}

func TestTargetXMLDeclaresTypes(t *testing.T) {
	for _, opt := range []AMD64Options{{}, {AVX: true, System: true}, {OSABI: "Windows"}} {
		d := AMD64(opt)
		doc := TargetXML(d)
		for _, decl := range []string{`<flags id="i386_eflags"`, `<flags id="i386_mxcsr"`, `<union id="vec128"`, `<vector id="v4f"`} {
			assert.Contains(t, doc, decl, "%+v: not declared", opt)
		}
		assert.Equal(t, opt.OSABI != "", strings.Contains(doc, "<osabi>"), "%+v: osabi present", opt)
		// Our own parser reads back the same layout.
		back, nums, err := ParseTargetXML([]byte(doc), nil)
		require.NoError(t, err)
		require.Equal(t, d.Size(), back.Size(), "%+v: round trip: size", opt)
		require.Len(t, back.Registers, len(d.Registers), "%+v: round trip: registers", opt)
		require.Equal(t, [2]int{d.PC, d.SP}, [2]int{back.PC, back.SP}, "%+v: round trip: PC and SP", opt)
		for i := range nums {
			require.Equal(t, i, nums[i], "register %d: number", i)
			require.Equal(t, d.Registers[i].Name, back.Registers[i].Name, "register %d: name", i)
			require.Equal(t, d.Registers[i].DWARF, back.Registers[i].DWARF, "register %d: DWARF number", i)
		}
	}
}

func TestParseTargetXMLIncludesAnyOrder(t *testing.T) {
	// QEMU style: a top document that includes a feature file, registers
	// in QEMU's order and without regnum.
	top := `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>i386:x86-64</architecture><xi:include href="core.xml"/></target>`
	core := `<?xml version="1.0"?><feature name="org.gnu.gdb.i386.core"><reg name="rax" bitsize="64"/><reg name="rip" bitsize="64" type="code_ptr"/><reg name="rsp" bitsize="64" regnum="7"/><reg name="eflags" bitsize="32"/></feature>`
	d, nums, err := ParseTargetXML([]byte(top), func(name string) ([]byte, error) {
		if name != "core.xml" {
			return nil, fmt.Errorf("no %s", name)
		}
		return []byte(core), nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, d.Lookup("rip"), "rip")
	assert.Equal(t, [2]int{1, 2}, [2]int{d.PC, d.SP}, "PC and SP")
	require.Len(t, nums, 4, "register numbers")
	assert.Equal(t, []int{7, 8}, nums[2:], "register numbers of rsp and eflags")
	assert.Equal(t, 24, d.Registers[3].Offset, "eflags' offset")
}

func TestSecondClientRefused(t *testing.T) {
	tt := newTestTarget()
	s := serveTCP(t, tt)
	c1, err := Dial(s.addr)
	require.NoError(t, err)
	_, err = Dial(s.addr, WithTimeout(3*time.Second))
	require.ErrorContains(t, err, "another debugger is already attached", "second client")
	// After the first detaches, a new client attaches and finds the state.
	require.NoError(t, c1.WriteRegisterUint("rax", 0xabc))
	require.NoError(t, c1.Detach())
	var c2 *Client
	for i := 0; i < 100; i++ {
		if c2, err = Dial(s.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, err)
	defer c2.Close()
	v, err := c2.ReadRegisterUint("rax")
	require.NoError(t, err, "rax after reconnect")
	assert.Equal(t, uint64(0xabc), v, "rax after reconnect")
	assert.Equal(t, 1, tt.detachCount(), "Detach calls")
}

func TestDisconnectWhileRunning(t *testing.T) {
	tt := newTestTarget()
	conn, _, done := startPipe(t, tt)
	c, err := NewClient(conn)
	require.NoError(t, err)
	c.c.wmu.Lock()
	c.c.begin()
	c.c.putString("vCont;c")
	c.c.send()
	c.c.wmu.Unlock()
	time.Sleep(20 * time.Millisecond)
	conn.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		require.FailNow(t, "session did not end")
	}
	assert.Equal(t, SIGINT, tt.LastStop().Signal, "stop kept: %+v", tt.LastStop())
}

func TestKill(t *testing.T) {
	tt := newTestTarget()
	conn, _, done := startPipe(t, tt)
	c, err := NewClient(conn)
	require.NoError(t, err)
	c.Kill()
	assert.ErrorIs(t, <-done, ErrKilled, "ServeConn after k")
	assert.True(t, tt.killed, "the target is killed")
}

func TestListenWarnsNonLoopback(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	l, err := Listen("0.0.0.0:0", log)
	if err != nil {
		t.Skip(err)
	}
	l.Close()
	require.Contains(t, buf.String(), "no authentication", "a warning")
	buf.Reset()
	l, err = Listen("127.0.0.1:0", log)
	require.NoError(t, err)
	l.Close()
	require.Empty(t, buf.String(), "warning on loopback")
	dir := t.TempDir()
	l, err = Listen("unix:"+dir+"/s", log)
	require.NoError(t, err)
	l.Close()
}

func TestReconnectAfterMidPacketDisconnect(t *testing.T) {
	s := serveTCP(t, newTestTarget())
	raw, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	io.WriteString(raw, "$M7ff000,2:ab") // cut short
	raw.Close()
	var c *Client
	for i := 0; i < 100; i++ {
		if c, err = Dial(s.addr, WithTimeout(5*time.Second)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, err)
	defer c.Close()
	var b [2]byte
	n, err := c.ReadMemory(testStackBase, b[:])
	require.NoError(t, err, "memory after cut packet")
	assert.Equal(t, 2, n, "memory after cut packet")
	assert.Equal(t, [2]byte{}, b, "memory after cut packet: the M did not happen")
	v, err := c.ReadRegisterUint("rip")
	require.NoError(t, err, "rip")
	assert.Equal(t, uint64(testCodeBase+0x10), v, "rip")
}

// panicTarget panics on a register read, as a buggy backend might.
type panicTarget struct{ *testTarget }

func (p panicTarget) ReadRegisters(tid int, dst []byte) error { panic("backend bug") }

func TestPanicEndsOnlyTheSession(t *testing.T) {
	s := serveTCP(t, panicTarget{newTestTarget()})
	c, err := Dial(s.addr, WithTimeout(5*time.Second))
	require.NoError(t, err)
	_, err = c.ReadRegisters()
	require.Error(t, err, "g answered despite the panic")
	c.Close()
	for i := 0; i < 100; i++ {
		if c, err = Dial(s.addr, WithTimeout(5*time.Second)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, err)
	defer c.Close()
	v, err := c.ReadRegisterUint("rip")
	require.NoError(t, err, "rip after the panic")
	assert.Equal(t, uint64(testCodeBase+0x10), v, "rip after the panic")
}

// forgetfulTarget drops an Interrupt that arrives while it is not inside
// Resume, as the contract allows, and starts Resume late.
type forgetfulTarget struct {
	*testTarget
	mu      sync.Mutex
	running bool
	stopCh  chan struct{}
}

func (f *forgetfulTarget) Resume(actions []ResumeAction) (Stop, error) {
	time.Sleep(30 * time.Millisecond) // the 0x03 gets here first
	f.mu.Lock()
	f.running = true
	f.mu.Unlock()
	<-f.stopCh
	f.mu.Lock()
	f.running = false
	f.mu.Unlock()
	return Stop{Kind: StopSignal, Signal: SIGINT, Thread: 1}, nil
}

func (f *forgetfulTarget) Interrupt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running {
		select {
		case f.stopCh <- struct{}{}:
		default:
		}
	}
}

func TestInterruptBeforeResumeStarts(t *testing.T) {
	ft := &forgetfulTarget{testTarget: newTestTarget(), stopCh: make(chan struct{}, 1)}
	conn, _, _ := startPipe(t, ft)
	p := newRawPeer(t, conn)
	p.send(frame("c") + "\x03")
	require.Regexp(t, `^T02`, p.recv(), "stop")
}

// TestReconnectAtOnce: a client that hangs up and reconnects at once
// arrives while the stub may still be ending its old session; it is
// served, not refused as a second debugger (admit waits for the old
// session to end).
func TestReconnectAtOnce(t *testing.T) {
	s := serveTCP(t, newTestTarget())
	for i := 0; i < 200; i++ {
		c, err := Dial(s.addr, WithTimeout(5*time.Second))
		require.NoError(t, err, "connection %d", i)
		_, err = c.ReadRegisterUint("rip")
		require.NoError(t, err, "connection %d", i)
		c.Close()
	}
}

// countingTarget counts Interrupt calls.
type countingTarget struct {
	*testTarget
	interrupts atomic.Int64
}

func (c *countingTarget) Interrupt() {
	c.interrupts.Add(1)
	c.testTarget.Interrupt()
}

// TestInterruptFlood: a flood of 0x03 while the target runs interrupts
// it once (plus the periodic repeats), instead of starting a goroutine
// per byte: 200,000 bytes once cost the stub 74 MB of goroutine stacks.
func TestInterruptFlood(t *testing.T) {
	ct := &countingTarget{testTarget: newTestTarget()}
	conn, _, _ := startPipe(t, ct)
	p := newRawPeer(t, conn)
	p.ask("qSupported:swbreak+")
	for round := 0; round < 3; round++ {
		p.send(frame("vCont;c"))
		p.send(strings.Repeat("\x03", 100_000))
		for _, what := range []string{"", "?"} {
			if what != "" {
				p.send(frame(what))
			}
			got := p.recv()
			for strings.HasPrefix(got, "O") {
				got = p.recv()
			}
			require.Regexp(t, `^T02`, got, "stop after the flood (%q)", what)
		}
	}
	assert.LessOrEqual(t, ct.interrupts.Load(), int64(30), "Target.Interrupt calls for 3 floods of 100,000 0x03")
}

// TestAcksAreNotGarbage: a client in ack mode acks every O packet; a
// chatty guest makes it send more acks in a row than maxGarbage, which
// once ended the session ("peer sends no packets"). Real garbage still
// does.
func TestAcksAreNotGarbage(t *testing.T) {
	in := strings.Repeat("+", 3*maxGarbage) + "$g#67"
	c := newCodec(&fuzzRW{r: strings.NewReader(in)}, 256)
	ev, err := c.readEvent()
	require.NoError(t, err, "after %d acks", 3*maxGarbage)
	assert.Equal(t, evPacket, ev, "after %d acks", 3*maxGarbage)
	assert.Equal(t, "g", string(c.pkt), "after %d acks", 3*maxGarbage)
	in = strings.Repeat("x", maxGarbage) + "$g#67"
	c = newCodec(&fuzzRW{r: strings.NewReader(in)}, 256)
	_, err = c.readEvent()
	assert.ErrorContains(t, err, "no packets", "after %d bytes of garbage: the peer dropped", maxGarbage)
}

// TestAdmitBehindManySessions: clients that queue behind one attached
// debugger are served in turn as each session ends, however many are
// ahead, within admitWait. Each ending session wakes every waiting
// client; admit once bounded its wait by 16 such wake-ups and refused
// a client queued behind more (TestReliabilityClientVanishes in CI).
// The order in which waiters are served is random, so the probe queued
// last is usually, not always, behind more than 16: five rounds of 100.
func TestAdmitBehindManySessions(t *testing.T) {
	s := serveTCP(t, newTestTarget())
	for round := 0; round < 5; round++ {
		holder, err := net.Dial("tcp", s.addr)
		require.NoError(t, err)
		holder.Write([]byte("+" + frame("?")))
		buf := make([]byte, 256)
		holder.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = holder.Read(buf) // the session is active
		require.NoError(t, err)
		for i := 0; i < 100; i++ {
			c, err := net.Dial("tcp", s.addr)
			require.NoError(t, err)
			// A short session: one request, and the client is gone.
			c.Write([]byte("+" + frame("?")))
			c.Close()
		}
		type dialed struct {
			c   *Client
			err error
		}
		probe := make(chan dialed, 1)
		go func() {
			c, err := Dial(s.addr, WithTimeout(10*time.Second)) // waits in admit
			probe <- dialed{c, err}
		}()
		time.Sleep(50 * time.Millisecond) // every client waits in admit
		holder.Close()
		d := <-probe
		require.NoError(t, d.err, "round %d: the client queued behind 101 sessions", round)
		_, err = d.c.ReadRegisterUint("rip")
		require.NoError(t, err, "round %d", round)
		d.c.Close()
	}
}
