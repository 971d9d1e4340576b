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
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// tcpPair returns two ends of a loopback TCP connection. (net.Pipe has
// no buffering: in ack mode both sides would block writing at once.)
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// startPipe serves tt on one end of a net.Pipe and returns the other end.
func startPipe(t testing.TB, tt *testTarget, opts ...Option) (net.Conn, *Server, chan error) {
	t.Helper()
	srv := NewServer(tt, append([]Option{WithLogger(quietLogger())}, opts...)...)
	a, b := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(a) }()
	t.Cleanup(func() { b.Close() })
	return b, srv, done
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
	if _, err := io.WriteString(p.conn, raw); err != nil {
		p.t.Fatalf("write %q: %v", raw, err)
	}
}

// recv returns the next packet's payload (acks are sent when in ack mode).
func (p *rawPeer) recv() string {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		ev, err := p.c.readEvent()
		if err != nil {
			p.t.Fatalf("read: %v", err)
		}
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
		if got := p.ask(tc.req); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.req, got, tc.want)
		}
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
	if got := p.ask("QStartNoAckMode"); got != "OK" {
		t.Fatalf("QStartNoAckMode: %q", got)
	}
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
		if got := p.ask(tc.req); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.req, got, tc.want)
		}
	}
}

func TestServerBinaryUploadDialect(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	if got := p.ask("qSupported:binary-upload+"); !strings.HasSuffix(got, ";binary-upload+") {
		t.Fatalf("qSupported: %q", got)
	}
	if got := p.ask("x140001000,3"); got != "b\x00\x01\x02" {
		t.Errorf("x: %q", got)
	}
	if got := p.ask("x140001000,0"); got != "b" {
		t.Errorf("x probe: %q", got)
	}
}

func TestServerFraming(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt, WithPacketSize(256))
	p := newRawPeer(t, conn)
	// A bad checksum is nacked; the client retransmits.
	p.send("$qC#00")
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(p.conn, b[:]); err != nil || b[0] != '-' {
		t.Fatalf("want '-', got %q %v", b[0], err)
	}
	if got := p.ask("qC"); got != "QC1" {
		t.Fatalf("after nack: %q", got)
	}
	// Our '-' makes the server resend its last reply.
	p.send("-")
	if got := p.recv(); got != "QC1" {
		t.Fatalf("retransmit: %q", got)
	}
	// Run-length encoded input: "m7ff000,1" + "0"*3 => m7ff0000000,1? Use
	// a register write whose zeros are compressed.
	p.send(frame("P0=ff0* ")) // "0* " = '0' then 3 more '0': ff0000 ... too short
	if got := p.recv(); got != "E16" {
		t.Fatalf("short RLE P: %q", got)
	}
	p.send(frame("P0=0*+f")) // '+' = 43-29 = 14 more zeros: 16 digits
	if got := p.recv(); got != "OK" {
		t.Fatalf("RLE P: %q", got)
	}
	if got := p.ask("p0"); got != "000000000000000f" {
		t.Fatalf("after RLE P: %q", got)
	}
	// Escaped binary X.
	p.send(frame("X7ff010,4:}\x03}\x04}]}\x0a"))
	if got := p.recv(); got != "OK" {
		t.Fatalf("X escaped: %q", got)
	}
	if got := p.ask("m7ff010,4"); got != "23247d2a" {
		t.Fatalf("after X: %q", got)
	}
	// Oversized packets get an error and the session survives.
	if got := p.ask("M7ff000,100:" + strings.Repeat("00", 0x100)); got != "E16" {
		t.Fatalf("oversized: %q", got)
	}
	if got := p.ask("qC"); got != "QC1" {
		t.Fatalf("after oversized: %q", got)
	}
	// A bad RLE count and an RLE at the start are errors too.
	if got := p.ask("*!"); got != "E16" {
		t.Fatalf("rle at start: %q", got)
	}
	// Garbage and acks between packets are skipped.
	p.send("+++garbage")
	if got := p.ask("qC"); got != "QC1" {
		t.Fatalf("after garbage: %q", got)
	}
	// m replies are capped to what fits the packet size.
	if got := p.ask("m140001000,1000"); len(got) != 256 {
		t.Fatalf("capped m: %d hex digits", len(got))
	}
}

func TestServerResumeAndInterrupt(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	p.ask("qSupported:swbreak+;hwbreak+")
	// Step.
	if got := p.ask("vCont;s:1"); !strings.HasPrefix(got, "T05thread:1;10:1110004001000000;") {
		t.Fatalf("step: %q", got)
	}
	if len(tt.lastActs) != 1 || tt.lastActs[0].Thread != AllThreads || !tt.lastActs[0].Step {
		t.Fatalf("step actions: %+v", tt.lastActs)
	}
	// Continue to a breakpoint; the guest prints first.
	p.ask("Z0,140001100,1")
	p.send(frame("c"))
	if got := p.recv(); got != "O"+hexString("guest says hi\n") {
		t.Fatalf("console: %q", got)
	}
	if got := p.recv(); !strings.HasPrefix(got, "T05thread:1;10:0011004001000000;") || !strings.HasSuffix(got, "swbreak:;") {
		t.Fatalf("breakpoint stop: %q", got)
	}
	p.ask("z0,140001100,1")
	// Range step from 0x140001100 within [0x140001100, 0x140001108).
	resumes := tt.resumes
	if got := p.ask("vCont;r140001100,140001108:1;c"); !strings.HasPrefix(got, "T05thread:1;10:0811004001000000;") {
		t.Fatalf("range step: %q", got)
	}
	if n := tt.resumes - resumes; n != 8 {
		t.Fatalf("range step took %d steps, want 8", n)
	}
	// Continue with no breakpoint runs until interrupted; the target's
	// description reaches GDB as an O packet.
	p.send(frame("vCont;c"))
	if got := p.recv(); got != "O"+hexString("guest says hi\n") {
		t.Fatalf("console: %q", got)
	}
	p.send("\x03")
	if got := p.recv(); got != "O"+hexString("interrupted\n") {
		t.Fatalf("description: %q", got)
	}
	if got := p.recv(); !strings.HasPrefix(got, "T02thread:1;") {
		t.Fatalf("interrupt stop: %q", got)
	}
	// C/S with a signal and an address.
	if got := p.ask("S05;140001000"); !strings.HasPrefix(got, "T05thread:1;10:0110004001000000;") {
		t.Fatalf("S: %q", got)
	}
	for _, bad := range []string{"vCont;x", "vCont;", "vCont;Czz", "vCont;r5,1", "Czz", "szz"} {
		if got := p.ask(bad); got != "E16" && got != "" {
			t.Errorf("%q: %q", bad, got)
		}
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
		if got[0] != 'O' || len(got) > 512 {
			t.Fatalf("monitor chunk %d: %d bytes %q", i, len(got), got[:10])
		}
		out.WriteString(got[1:])
	}
	if out.String() != hexString(strings.Repeat("0123456789abcdef", 4096)) {
		t.Fatalf("monitor output differs (%d hex digits)", out.Len())
	}
	p.send(frame("qRcmd," + hexString("nope")))
	if got := p.recv(); got != "O"+hexString("unknown monitor command \"nope\"\n") {
		t.Fatalf("monitor error text: %q", got)
	}
	if got := p.recv(); got != "E01" {
		t.Fatalf("monitor error: %q", got)
	}
	c, err := NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Monitor("help"); err != nil || out != "commands: help, big, fail\n"+stubStatsHelp {
		t.Fatalf("client monitor: %q %v", out, err)
	}
}

func TestServerXfer(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	c, err := NewClient(conn, WithClientLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ object, annex, want string }{
		{"libraries", "", `<library name="C:\demo\demo.exe"><segment address="0x140001000"/></library>`},
		{"threads", "", `<thread id="1" name="main">vCPU 0</thread>`},
		{"memory-map", "", `<memory type="ram" start="0x7ff000" length="0x1000"/>`},
		{"features", "target.xml", `<reg name="fs_base" bitsize="64" type="int" regnum="57"`},
	} {
		doc, err := c.ReadXfer(tc.object, tc.annex)
		if err != nil {
			t.Fatalf("%s: %v", tc.object, err)
		}
		if !strings.Contains(string(doc), tc.want) {
			t.Errorf("%s: no %q in\n%s", tc.object, tc.want, doc)
		}
	}
}

func TestTargetXMLDeclaresTypes(t *testing.T) {
	for _, opt := range []AMD64Options{{}, {AVX: true, System: true}, {OSABI: "Windows"}} {
		d := AMD64(opt)
		doc := TargetXML(d)
		for _, decl := range []string{`<flags id="i386_eflags"`, `<flags id="i386_mxcsr"`, `<union id="vec128"`, `<vector id="v4f"`} {
			if !strings.Contains(doc, decl) {
				t.Errorf("%+v: %s not declared", opt, decl)
			}
		}
		if got := strings.Contains(doc, "<osabi>"); got != (opt.OSABI != "") {
			t.Errorf("%+v: osabi present %v", opt, got)
		}
		// Our own parser reads back the same layout.
		back, nums, err := ParseTargetXML([]byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		if back.Size() != d.Size() || len(back.Registers) != len(d.Registers) || back.PC != d.PC || back.SP != d.SP {
			t.Fatalf("%+v: round trip differs: size %d/%d", opt, back.Size(), d.Size())
		}
		for i := range nums {
			if nums[i] != i || back.Registers[i].Name != d.Registers[i].Name || back.Registers[i].DWARF != d.Registers[i].DWARF {
				t.Fatalf("register %d differs", i)
			}
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
	if err != nil {
		t.Fatal(err)
	}
	if d.Lookup("rip") != 1 || d.PC != 1 || d.SP != 2 || nums[2] != 7 || nums[3] != 8 || d.Registers[3].Offset != 24 {
		t.Fatalf("got %+v nums %v", d.Registers, nums)
	}
}

func TestSecondClientRefused(t *testing.T) {
	tt := newTestTarget()
	srv := NewServer(tt, WithLogger(quietLogger()))
	l, err := Listen("127.0.0.1:0", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	c1, err := Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dial(l.Addr().String(), WithTimeout(3*time.Second))
	if err == nil || !strings.Contains(err.Error(), "another debugger is already attached") {
		t.Fatalf("second client: %v", err)
	}
	// After the first detaches, a new client attaches and finds the state.
	if err := c1.WriteRegisterUint("rax", 0xabc); err != nil {
		t.Fatal(err)
	}
	if err := c1.Detach(); err != nil {
		t.Fatal(err)
	}
	var c2 *Client
	for i := 0; i < 100; i++ {
		if c2, err = Dial(l.Addr().String()); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if v, err := c2.ReadRegisterUint("rax"); err != nil || v != 0xabc {
		t.Fatalf("rax after reconnect: %#x %v", v, err)
	}
	if n := tt.detachCount(); n != 1 {
		t.Fatalf("Detach called %d times", n)
	}
}

func TestDisconnectWhileRunning(t *testing.T) {
	tt := newTestTarget()
	conn, _, done := startPipe(t, tt)
	c, err := NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
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
		t.Fatal("session did not end")
	}
	if st := tt.LastStop(); st.Signal != SIGINT {
		t.Fatalf("stop kept: %+v", st)
	}
}

func TestKill(t *testing.T) {
	tt := newTestTarget()
	conn, _, done := startPipe(t, tt)
	c, err := NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	c.Kill()
	if err := <-done; err != ErrKilled || !tt.killed {
		t.Fatalf("kill: %v %v", err, tt.killed)
	}
}

func TestListenWarnsNonLoopback(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	l, err := Listen("0.0.0.0:0", log)
	if err != nil {
		t.Skip(err)
	}
	l.Close()
	if !strings.Contains(buf.String(), "no authentication") {
		t.Fatalf("no warning: %q", buf.String())
	}
	buf.Reset()
	l, err = Listen("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if buf.Len() != 0 {
		t.Fatalf("warning on loopback: %q", buf.String())
	}
	dir := t.TempDir()
	l, err = Listen("unix:"+dir+"/s", log)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestReconnectAfterMidPacketDisconnect(t *testing.T) {
	tt := newTestTarget()
	srv := NewServer(tt, WithLogger(quietLogger()))
	l, err := Listen("127.0.0.1:0", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(raw, "$M7ff000,2:ab") // cut short
	raw.Close()
	var c *Client
	for i := 0; i < 100; i++ {
		if c, err = Dial(l.Addr().String(), WithTimeout(5*time.Second)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b [2]byte
	if n, err := c.ReadMemory(testStackBase, b[:]); err != nil || n != 2 || b != [2]byte{} {
		t.Fatalf("memory after cut packet: %v %v %v", n, err, b)
	}
	if v, err := c.ReadRegisterUint("rip"); err != nil || v != testCodeBase+0x10 {
		t.Fatalf("rip: %#x %v", v, err)
	}
}

// panicTarget panics on a register read, as a buggy backend might.
type panicTarget struct{ *testTarget }

func (p panicTarget) ReadRegisters(tid int, dst []byte) error { panic("backend bug") }

func TestPanicEndsOnlyTheSession(t *testing.T) {
	tt := newTestTarget()
	srv := NewServer(panicTarget{tt}, WithLogger(quietLogger()))
	l, err := Listen("127.0.0.1:0", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	c, err := Dial(l.Addr().String(), WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegisters(); err == nil {
		t.Fatal("g answered despite the panic")
	}
	c.Close()
	for i := 0; i < 100; i++ {
		if c, err = Dial(l.Addr().String(), WithTimeout(5*time.Second)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.ReadRegisterUint("rip"); err != nil || v != testCodeBase+0x10 {
		t.Fatalf("after panic: %#x %v", v, err)
	}
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
	srv := NewServer(ft, WithLogger(quietLogger()))
	a, b := tcpPair(t)
	go srv.ServeConn(a)
	defer b.Close()
	p := newRawPeer(t, b)
	p.send(frame("c") + "\x03")
	if got := p.recv(); !strings.HasPrefix(got, "T02") {
		t.Fatalf("stop: %q", got)
	}
}

// TestReconnectAtOnce: a client that hangs up and reconnects at once
// arrives while the stub may still be ending its old session; it is
// served, not refused as a second debugger (admit waits for the old
// session to end).
func TestReconnectAtOnce(t *testing.T) {
	tt := newTestTarget()
	srv := NewServer(tt, WithLogger(quietLogger()))
	l, err := Listen("127.0.0.1:0", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	for i := 0; i < 200; i++ {
		c, err := Dial(l.Addr().String(), WithTimeout(5*time.Second))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if _, err := c.ReadRegisterUint("rip"); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
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
	srv := NewServer(ct, WithLogger(quietLogger()))
	a, b := tcpPair(t)
	go srv.ServeConn(a)
	defer b.Close()
	p := newRawPeer(t, b)
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
			if !strings.HasPrefix(got, "T02") {
				t.Fatalf("stop after the flood (%q): %q", what, got)
			}
		}
	}
	if n := ct.interrupts.Load(); n > 30 {
		t.Fatalf("3 floods of 100,000 0x03 called Target.Interrupt %d times", n)
	}
}

// TestAcksAreNotGarbage: a client in ack mode acks every O packet; a
// chatty guest makes it send more acks in a row than maxGarbage, which
// once ended the session ("peer sends no packets"). Real garbage still
// does.
func TestAcksAreNotGarbage(t *testing.T) {
	in := strings.Repeat("+", 3*maxGarbage) + "$g#67"
	c := newCodec(&fuzzRW{r: strings.NewReader(in)}, 256)
	ev, err := c.readEvent()
	if err != nil || ev != evPacket || string(c.pkt) != "g" {
		t.Fatalf("after %d acks: event %v, packet %q, err %v", 3*maxGarbage, ev, c.pkt, err)
	}
	in = strings.Repeat("x", maxGarbage) + "$g#67"
	c = newCodec(&fuzzRW{r: strings.NewReader(in)}, 256)
	if _, err := c.readEvent(); err == nil || !strings.Contains(err.Error(), "no packets") {
		t.Fatalf("after %d bytes of garbage: err %v, want the peer dropped", maxGarbage, err)
	}
}
