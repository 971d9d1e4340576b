package rsp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// watchdog panics (naming the input) when one fuzz input runs for more
// than 5 s: go test -fuzz has no hang detection of its own.
func watchdog(input []byte) func() {
	tm := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("fuzz input hangs: %q", input)) })
	return func() { tm.Stop() }
}

// FuzzDecoder feeds arbitrary bytes to the packet reader: it must never
// panic, never return a payload larger than the packet size, and always
// make progress.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		"$g#67", "+$qC#b4", "-", "\x03", "$m0,4#fd", "$P0=0*+f#00",
		"$X0,4:}\x03}\x04}]}\x0a#00", "$*!#00", "$}#00", "$$$#", "$ab#zz",
		"$" + string(bytes.Repeat([]byte("a"), 300)) + "#00",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, noAck bool) {
		defer watchdog(data)()
		rw := &fuzzRW{r: bytes.NewReader(data)}
		c := newCodec(rw, 256)
		c.noAck = noAck
		for i := 0; i <= len(data); i++ {
			ev, err := c.readEvent()
			if err != nil {
				return
			}
			if ev == evPacket && len(c.pkt) > 256 {
				t.Fatalf("payload of %d bytes", len(c.pkt))
			}
		}
		if _, err := c.readEvent(); err == nil {
			t.Fatal("more events than input bytes")
		}
	})
}

type fuzzRW struct {
	r io.Reader
	w bytes.Buffer
}

func (f *fuzzRW) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f *fuzzRW) Write(p []byte) (int, error) { return f.w.Write(p) }

// discardConn is a net.Conn whose writes vanish and reads end at once.
type discardConn struct {
	net.Conn
	n int
}

func (d *discardConn) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discardConn) Read(p []byte) (int, error)  { return 0, io.EOF }
func (d *discardConn) Close() error                { return nil }

// FuzzHandlers dispatches arbitrary packets to a session on the test
// target, resuming and interrupting as the session loop would: no input
// may panic or hang the session.
func FuzzHandlers(f *testing.F) {
	for _, s := range []string{
		"g", "G" + string(bytes.Repeat([]byte("00"), 560)), "p10", "P10=0000000000000000",
		"p0;thread:1;", "m140001000,10", "x140001000,10", "M7ff000,2:abcd", "X7ff000,1:a",
		"Z0,140001100,1", "z0,140001100,1", "Z2,7ff000,8", "c", "s", "C05", "S05;140001000",
		"vCont;c", "vCont;s:1", "vCont;r140001000,140001008:1;c", "vCont?", "?", "Hg1", "Hc-1", "T1",
		"qSupported:swbreak+;binary-upload+", "QStartNoAckMode", "qfThreadInfo", "qsThreadInfo",
		"qC", "qThreadExtraInfo,1", "qAttached", "qSymbol::", "qOffsets",
		"qXfer:features:read:target.xml:0,100", "qXfer:libraries:read::0,100",
		"qXfer:threads:read::0,100", "qXfer:memory-map:read::0,100", "qXfer:exec-file:read:1:0,100",
		"vFile:setfs:0", "vFile:open:433a5c64656d6f5c64656d6f2e657865,0,0", "vFile:pread:0,10,0",
		"vFile:fstat:0", "vFile:close:0", "qGetTIBAddr:1", "qMemoryRegionInfo:140001000",
		"qFileLoadAddress:00", "qRcmd,68656c70", "qHostInfo", "qProcessInfo", "qRegisterInfo3",
		"QThreadSuffixSupported", "QListThreadsInStopReply", "QEnableErrorStrings", "jThreadsInfo",
		"D", "k", "vKill;1", "vMustReplyEmpty", "_M1000,rwx", "_m140010000",
		"QCatchSyscalls:1;1;e7", "QCatchSyscalls:0", "!", "vRun;;37", "Z0,140001100,1;X7,26000022071327",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) > 1024 {
			return
		}
		defer watchdog(pkt)()
		tt := newTestTarget()
		srv := NewServer(tt, WithLogger(quietLogger()), WithPacketSize(512))
		s := newSession(srv, &discardConn{})
		// Two rounds: the second packet sees any state the first set.
		for round := 0; round < 2; round++ {
			buf := append(s.c.in[:0], pkt...)
			s.c.pkt = buf
			err := s.dispatch(buf)
			if s.getState() == stateRunning {
				s.interrupt()
			}
			s.waitResume()
			if !s.finish(err) {
				return
			}
		}
	})
}
