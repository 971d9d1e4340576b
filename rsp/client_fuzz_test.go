package rsp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileStub answers a Client over net.Pipe with replies chosen by the
// fuzzer: the qSupported reply, target.xml and the document its includes
// name, a stop reply, and the data of memory, register and monitor
// replies. It frames and escapes correctly; what it says is arbitrary.
type hostileStub struct {
	supported, targetXML, include, stop, data []byte
}

func (h *hostileStub) serve(conn net.Conn) {
	// net.Pipe has no buffer: a reader goroutine stands in for the
	// socket buffer, so that the client's acks never block while the stub
	// writes several packets in a row.
	pr, pw := io.Pipe()
	go func() {
		var pending [][]byte
		in := make(chan []byte)
		go func() {
			defer close(in)
			for {
				b := make([]byte, 512)
				n, err := conn.Read(b)
				if err != nil {
					return
				}
				in <- b[:n]
			}
		}()
		out := make(chan []byte)
		go func() {
			defer pw.Close()
			for b := range out {
				if _, err := pw.Write(b); err != nil {
					return
				}
			}
		}()
		defer close(out)
		for {
			var send chan []byte
			var first []byte
			if len(pending) > 0 {
				send, first = out, pending[0]
			}
			select {
			case b, ok := <-in:
				if !ok {
					return
				}
				pending = append(pending, b)
			case send <- first:
				pending = pending[1:]
			}
		}
	}()
	defer pr.Close()
	r := bufio.NewReader(pr)
	var pkt []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return
		}
		if b != '$' {
			continue // acks, nacks and interrupts
		}
		pkt = pkt[:0]
		for {
			b, err = r.ReadByte()
			if err != nil {
				return
			}
			if b == '#' {
				break
			}
			pkt = append(pkt, b)
		}
		if _, err := r.Discard(2); err != nil {
			return
		}
		for _, rep := range h.reply(string(pkt)) {
			if _, err := conn.Write(hostileFrame(rep)); err != nil {
				return
			}
		}
	}
}

// reply returns the packets answering one request.
func (h *hostileStub) reply(p string) [][]byte {
	one := func(b []byte) [][]byte { return [][]byte{b} }
	switch {
	case strings.HasPrefix(p, "qSupported"):
		return one(h.supported)
	case p == "QStartNoAckMode" || strings.HasPrefix(p, "H"):
		return one([]byte("OK"))
	case strings.HasPrefix(p, "qXfer:features:read:"):
		rest := strings.TrimPrefix(p, "qXfer:features:read:")
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return one([]byte("E01"))
		}
		doc := h.include
		if rest[:i] == "target.xml" {
			doc = h.targetXML
		}
		offs, lens, _ := strings.Cut(rest[i+1:], ",")
		off, err1 := strconv.ParseUint(offs, 16, 32)
		n, err2 := strconv.ParseUint(lens, 16, 32)
		if err1 != nil || err2 != nil {
			return one([]byte("E02"))
		}
		if off >= uint64(len(doc)) {
			return one([]byte("l"))
		}
		end := min(uint64(len(doc)), off+n)
		kind := byte('m')
		if end == uint64(len(doc)) {
			kind = 'l'
		}
		return one(append([]byte{kind}, doc[off:end]...))
	case p == "vCont?":
		return one([]byte("vCont;c;C;s;S"))
	case p == "?" || p == "c" || p == "s" || strings.HasPrefix(p, "vCont;"):
		return one(h.stop)
	case strings.HasPrefix(p, "qRcmd,"):
		return [][]byte{append([]byte("O"), hex.EncodeToString(h.data)...), h.data, []byte("OK")}
	case p == "g" || p[0] == 'p' || p[0] == 'm' || p[0] == 'x':
		return one(h.data)
	}
	return one(nil)
}

// hostileFrame wraps a payload as $...#cs, escaping the characters the framing
// reserves.
func hostileFrame(payload []byte) []byte {
	out := []byte{'+', '$'}
	var sum byte
	for _, b := range payload {
		if b == '$' || b == '#' || b == '}' || b == '*' {
			out = append(out, '}')
			sum += '}'
			b ^= 0x20
		}
		out = append(out, b)
		sum += b
	}
	return fmt.Appendf(out, "#%02x", sum)
}

// FuzzClientReplies connects a Client to a hostile stub and uses it as a
// debugger would: negotiation, target description (with includes),
// registers, memory, stop replies, monitor output. Nothing a stub says
// may panic or hang the client; a description it accepts is usable.
func FuzzClientReplies(f *testing.F) {
	amd64 := []byte(TargetXML(AMD64(AMD64Options{})))
	core := []byte(`<?xml version="1.0"?><feature name="org.gnu.gdb.i386.core"><reg name="rip" bitsize="64" type="code_ptr"/><reg name="eflags" bitsize="32"/></feature>`)
	with := []byte(`<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>i386:x86-64</architecture><xi:include href="64bit-core.xml"/></target>`)
	regs := bytes.Repeat([]byte("00"), 560)
	for _, s := range []struct{ sup, xml, inc, stop, data []byte }{
		{[]byte("PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+"), amd64, nil, []byte("T05thread:p1.1;"), regs},
		{[]byte("PacketSize=47ff;QStartNoAckMode+;qXfer:features:read+;binary-upload+;swbreak+"), with, core, []byte("T05swbreak:;thread:1;06:0000000000000000;"), []byte("b4142")},
		{[]byte("PacketSize=40;qXfer:features:read+"), []byte(`<target><reg name="r" bitsize="64" regnum="2147483647"/><reg name="s" bitsize="4096" regnum="-5"/></target>`), nil, []byte("W00"), []byte("E01")},
		{[]byte("qXfer:features:read+"), []byte(`<target><xi:include href="a"/></target>`), []byte(`<target><xi:include href="a"/></target>`), []byte("T0awatch:7fff0000;library:;"), []byte("E.no")},
		{[]byte(""), nil, nil, []byte("X09"), []byte("Oxx")},
		{[]byte("PacketSize=zz;PacketSize=ffffffffffffffff"), nil, nil, []byte("T"), nil},
	} {
		f.Add(s.sup, s.xml, s.inc, s.stop, s.data)
	}
	f.Fuzz(func(t *testing.T, sup, xmlDoc, inc, stop, data []byte) {
		if len(xmlDoc)+len(inc)+len(data) > 64<<10 {
			return
		}
		defer watchdog(append(append([]byte(nil), sup...), xmlDoc...))()
		// The parsers on their own.
		if d, nums, err := ParseTargetXML(xmlDoc, func(string) ([]byte, error) { return inc, nil }); err == nil {
			if len(d.Registers) == 0 || len(nums) != len(d.Registers) {
				t.Fatalf("description of %d registers, %d numbers", len(d.Registers), len(nums))
			}
		}
		_, _ = ParseStop(stop)

		srvConn, cliConn := net.Pipe()
		h := &hostileStub{supported: sup, targetXML: xmlDoc, include: inc, stop: stop, data: data}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); h.serve(srvConn) }()
		defer func() { cliConn.Close(); srvConn.Close(); wg.Wait() }()
		c, err := NewClient(cliConn, WithTimeout(2*time.Second), WithClientLogger(quietLogger()))
		if err != nil {
			return
		}
		d := c.Description()
		if d == nil || len(d.Registers) == 0 {
			t.Fatal("client without registers")
		}
		_, _ = c.ReadRegisters()
		buf := make([]byte, 64)
		for i := range min(len(d.Registers), 4) {
			_ = c.ReadRegister(i, buf)
		}
		_, _ = c.ReadRegisterUint("rip")
		if n, _ := c.ReadMemory(0x1000, buf); n > len(buf) {
			t.Fatalf("read %d bytes into %d", n, len(buf))
		}
		_, _ = c.StopReason()
		_, _ = c.Monitor("x")
		_, _ = c.Step()
		_, _ = c.ReadXfer("features", "target.xml")
	})
}
