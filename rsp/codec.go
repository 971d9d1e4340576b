package rsp

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"sync"
)

// The packet layer shared by the server and the client.
//
//	$ payload # c c        payload: escaped with '}' (byte ^ 0x20) for
//	                       '$' '#' '}' '*', may hold run-length runs
//	                       "X*n" (repeat X n-29 more times)
//	                       cc: two hex digits, sum of the raw payload
//	                       bytes modulo 256
//
// Outside a packet the peer may send '+' (ack), '-' (nack: resend the
// last packet) and 0x03 (interrupt, client to stub only).

// DefaultPacketSize is the PacketSize the server advertises: the largest
// payload (before escaping) it accepts in one packet.
const DefaultPacketSize = 0x4000

// event is what readEvent found on the wire.
type event uint8

const (
	evPacket    event = iota // a packet whose payload is in codec.pkt
	evInterrupt              // a 0x03 byte
	evNack                   // '-': the peer wants the last packet again
	evBad                    // a packet that was malformed or too large; codec.bad says why
)

// errBadChecksum and errTooLarge are the malformed-packet reasons.
var (
	errBadChecksum = errors.New("bad checksum")
	errTooLarge    = errors.New("packet larger than PacketSize")
	errBadEscape   = errors.New("bad escape or run-length sequence")
)

// maxGarbage bounds how many bytes between packets are skipped before the
// peer is considered not to speak RSP.
const maxGarbage = 1 << 16

// codec reads and writes packets on one connection. Reading happens on
// one goroutine; writing is serialised by wmu because the console and the
// running-target goroutine also send.
type codec struct {
	r *bufio.Reader
	w io.Writer

	noAck bool
	// runs makes putHex run-length encode: the protocol allows it in
	// responses only, so servers set it and clients do not.
	runs    bool
	maxSize int    // largest accepted payload after decoding
	in      []byte // reused inbound buffer, cap maxSize
	pkt     []byte // the payload of the last evPacket (aliases in)
	bad     error  // why the last evBad was bad

	wmu sync.Mutex
	out []byte // the framed packet being built or last sent
	sum byte   // running checksum of out after '$'
}

func newCodec(rw io.ReadWriter, maxSize int) *codec {
	if maxSize <= 0 {
		maxSize = DefaultPacketSize
	}
	return newCodecSizes(rw, maxSize, 2*maxSize+8)
}

func newCodecSizes(rw io.ReadWriter, maxIn, outCap int) *codec {
	return &codec{
		r:       bufio.NewReaderSize(rw, 64<<10),
		w:       rw,
		maxSize: maxIn,
		in:      make([]byte, 0, maxIn),
		out:     make([]byte, 0, outCap),
	}
}

// newServerCodec is a codec whose hex replies are run-length encoded.
func newServerCodec(rw io.ReadWriter, maxSize int) *codec {
	c := newCodec(rw, maxSize)
	c.runs = true
	return c
}

// readEvent waits for the next thing the peer sends that needs handling.
// Acks are swallowed. In ack mode a good packet is acked with '+' and a
// bad checksum with '-' (the peer retransmits, so the caller sees
// nothing); in no-ack mode a bad packet is reported as evBad.
func (c *codec) readEvent() (event, error) {
	for skipped := 0; skipped < maxGarbage; {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case '$':
			ev, err := c.readPacket()
			if err != nil {
				return 0, err
			}
			if ev == evBad && c.bad == errBadChecksum && !c.noAck {
				if err := c.writeRaw('-'); err != nil {
					return 0, err
				}
				continue
			}
			if !c.noAck {
				if err := c.writeRaw('+'); err != nil {
					return 0, err
				}
			}
			return ev, nil
		case 0x03:
			return evInterrupt, nil
		case '-':
			return evNack, nil
		case '+':
			// An ack. A client in ack mode acks every O packet of a
			// chatty guest: acks are not garbage, however many.
			continue
		}
		// Anything else between packets: ignore, up to maxGarbage.
		skipped++
	}
	return 0, errors.New("rsp: peer sends no packets")
}

// readPacket reads after '$' up to and including the checksum, expanding
// run-length runs and unescaping in the reused buffer.
func (c *codec) readPacket() (event, error) {
	buf := c.in[:0]
	var sum byte
	var bad error
	escaped := false
	for n := 0; ; n++ {
		if bad == nil && !escaped && c.r.Buffered() > 1 {
			// Fast path: copy the run of plain bytes already buffered.
			win, _ := c.r.Peek(min(c.r.Buffered(), cap(buf)-len(buf)))
			i := 0
			for i < len(win) {
				if b := win[i]; b == '#' || b == '$' || b == '}' || b == '*' {
					break
				}
				sum += win[i]
				i++
			}
			if i > 0 {
				buf = append(buf, win[:i]...)
				c.r.Discard(i)
				n += i
				continue
			}
		}
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, err
		}
		if b == '#' {
			break
		}
		if n > 64*c.maxSize {
			return 0, errors.New("rsp: packet without end")
		}
		if b == '$' {
			// A new packet start inside a packet: the previous one was
			// cut short (a client that reconnected mid-packet). Restart.
			buf, sum, bad, escaped = buf[:0], 0, nil, false
			continue
		}
		sum += b
		if bad != nil {
			continue
		}
		switch {
		case escaped:
			escaped = false
			if len(buf) == cap(buf) {
				bad = errTooLarge
				continue
			}
			buf = append(buf, b^0x20)
		case b == '}':
			escaped = true
		case b == '*':
			// Run-length: the next byte is the count + 29; repeat the
			// previous decoded byte.
			nb, err := c.r.ReadByte()
			if err != nil {
				return 0, err
			}
			if nb == '#' {
				bad = errBadEscape
				goto checksum
			}
			sum += nb
			cnt := int(nb) - 29
			if len(buf) == 0 || cnt < 0 {
				bad = errBadEscape
				continue
			}
			if len(buf)+cnt > cap(buf) {
				bad = errTooLarge
				continue
			}
			prev := buf[len(buf)-1]
			for i := 0; i < cnt; i++ {
				buf = append(buf, prev)
			}
		default:
			if len(buf) == cap(buf) {
				bad = errTooLarge
				continue
			}
			buf = append(buf, b)
		}
	}
checksum:
	cs0, err := c.r.ReadByte()
	if err != nil {
		return 0, err
	}
	cs1, err := c.r.ReadByte()
	if err != nil {
		return 0, err
	}
	want, ok := unhex8(cs0, cs1)
	if bad == nil && escaped {
		bad = errBadEscape
	}
	if !ok || want != sum {
		if !c.noAck || bad == nil {
			bad = errBadChecksum
		}
	}
	c.in = buf
	if bad != nil {
		c.bad = bad
		c.pkt = nil
		return evBad, nil
	}
	c.pkt = buf
	return evPacket, nil
}

// singleBytes holds every byte value, so writing one needs no buffer.
var singleBytes = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func (c *codec) writeRaw(b byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.w.Write(singleBytes[b : b+1])
	return err
}

// Reply building. The caller holds wmu from begin to send. The payload is
// appended escaped, with a running checksum, straight into the framed
// packet that is kept for retransmission.

func (c *codec) begin() {
	c.out = append(c.out[:0], '$')
	c.sum = 0
}

// payloadLen is how many framed payload bytes were appended so far.
func (c *codec) payloadLen() int { return len(c.out) - 1 }

func (c *codec) putByte(b byte) {
	switch b {
	case '$', '#', '}', '*':
		c.out = append(c.out, '}', b^0x20)
		c.sum += '}' + (b ^ 0x20)
	default:
		c.out = append(c.out, b)
		c.sum += b
	}
}

func (c *codec) putString(s string) {
	for i := 0; i < len(s); i++ {
		c.putByte(s[i])
	}
}

// putBytes appends binary data, escaping the four special bytes. Runs of
// plain bytes are copied whole.
func (c *codec) putBytes(p []byte) {
	for len(p) > 0 {
		i := 0
		var sum byte
		for ; i < len(p); i++ {
			b := p[i]
			if b == '$' || b == '#' || b == '}' || b == '*' {
				break
			}
			sum += b
		}
		c.out = append(c.out, p[:i]...)
		c.sum += sum
		if i == len(p) {
			return
		}
		c.putByte(p[i])
		p = p[i+1:]
	}
}

const hexdigits = "0123456789abcdef"

// hexPair[b] is b as two lower-case hex digits; hexSum[b] is the sum of
// those two digits, its share of the checksum.
var (
	hexPair [256][2]byte
	hexSum  [256]byte
)

func init() {
	for b := range 256 {
		hexPair[b] = [2]byte{hexdigits[b>>4], hexdigits[b&15]}
		hexSum[b] = hexdigits[b>>4] + hexdigits[b&15]
	}
}

// putHex appends p as hex digits (no byte of hex needs escaping); in
// responses run-length encoded, which GDB and LLDB both decode (zeroed
// memory and registers shrink to a few bytes). It is the `m`, `g` and `p` hot path:
// one table load per byte, no per-byte append.
func (c *codec) putHex(p []byte) {
	n := len(c.out)
	c.out = slices.Grow(c.out, 2*len(p))[:n+2*len(p)]
	dst := c.out[n:]
	for i, b := range p {
		pr := hexPair[b]
		dst[2*i], dst[2*i+1] = pr[0], pr[1]
	}
	if c.runs {
		dst = dst[:compressRuns(dst)]
	}
	var sum byte
	for _, b := range dst {
		sum += b
	}
	c.sum += sum
	c.out = c.out[:n+len(dst)]
}

// compressRuns run-length encodes b in place and returns its new length:
// a character repeated k more times (3 <= k <= 97) becomes "c*" plus the
// character k+29. Counts 6 and 7 would encode as '#' and '$', which the
// protocol forbids, so such runs are cut at 5. b must hold no special
// characters (hex digits do not).
func compressRuns(b []byte) int {
	w := 0
	for r := 0; r < len(b); {
		c := b[r]
		k := 0
		for r+1+k < len(b) && b[r+1+k] == c && k < 97 {
			k++
		}
		b[w] = c
		w++
		if k < 3 {
			r++
			continue
		}
		if k == 6 || k == 7 {
			k = 5
		}
		// In place is safe: w <= r, and the run being replaced spans at
		// least the three bytes written here.
		b[w], b[w+1] = '*', byte(k+29)
		w += 2
		r += 1 + k
	}
	return w
}

// putHex8 appends one byte as two hex digits.
func (c *codec) putHex8(b byte) {
	h, l := hexdigits[b>>4], hexdigits[b&15]
	c.out = append(c.out, h, l)
	c.sum += h + l
}

// putHexString appends s as hex digits.
func (c *codec) putHexString(s string) {
	for i := 0; i < len(s); i++ {
		b := s[i]
		h, l := hexdigits[b>>4], hexdigits[b&15]
		c.out = append(c.out, h, l)
		c.sum += h + l
	}
}

// putUint appends v in lower-case hex without leading zeros.
func (c *codec) putUint(v uint64) {
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = hexdigits[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	for _, b := range tmp[i:] {
		c.out = append(c.out, b)
		c.sum += b
	}
}

// putInt appends v in decimal (for JSON and LLDB key:value fields that
// are decimal).
func (c *codec) putDec(v int64) {
	if v < 0 {
		c.putByte('-')
		v = -v
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	for _, b := range tmp[i:] {
		c.putByte(b)
	}
}

// send finishes the framed packet and writes it.
func (c *codec) send() error {
	s := c.sum
	c.out = append(c.out, '#', hexdigits[s>>4], hexdigits[s&15])
	_, err := c.w.Write(c.out)
	return err
}

// resend writes the last packet again (after a '-').
func (c *codec) resend() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.out) == 0 || c.out[0] != '$' {
		return nil
	}
	_, err := c.w.Write(c.out)
	return err
}

// sendString sends a whole packet whose payload is s.
func (c *codec) sendString(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.begin()
	c.putString(s)
	return c.send()
}

// Hex helpers. They work on byte slices in place and never allocate.

func unhex(b byte) (byte, bool) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', true
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10, true
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

func unhex8(h, l byte) (byte, bool) {
	a, ok1 := unhex(h)
	b, ok2 := unhex(l)
	return a<<4 | b, ok1 && ok2
}

// decodeHexInPlace turns the hex digits in p into bytes at the front of
// p and returns them.
func decodeHexInPlace(p []byte) ([]byte, bool) {
	if len(p)%2 != 0 {
		return nil, false
	}
	for i := 0; i < len(p)/2; i++ {
		v, ok := unhex8(p[2*i], p[2*i+1])
		if !ok {
			return nil, false
		}
		p[i] = v
	}
	return p[:len(p)/2], true
}

// parseHex reads a hex number at the start of p and returns it and the
// rest. It fails on an empty number or more than 16 digits.
func parseHex(p []byte) (uint64, []byte, bool) {
	var v uint64
	i := 0
	for ; i < len(p); i++ {
		d, ok := unhex(p[i])
		if !ok {
			break
		}
		if i == 16 {
			return 0, p, false
		}
		v = v<<4 | uint64(d)
	}
	if i == 0 {
		return 0, p, false
	}
	return v, p[i:], true
}

// parseHexFull parses all of p as one hex number.
func parseHexFull(p []byte) (uint64, bool) {
	v, rest, ok := parseHex(p)
	return v, ok && len(rest) == 0
}

// cut splits p at the first sep.
func cut(p []byte, sep byte) (before, after []byte, found bool) {
	for i, b := range p {
		if b == sep {
			return p[:i], p[i+1:], true
		}
	}
	return p, nil, false
}

// hasPrefix is bytes.HasPrefix for a string prefix, without conversion.
func hasPrefix(p []byte, s string) bool {
	return len(p) >= len(s) && string(p[:len(s)]) == s
}

// parseThreadID reads a thread-id: "-1" (all), "0" (any), hex, or
// "pP.T" (multiprocess form; the process part is ignored).
func parseThreadID(p []byte) (int, bool) {
	if len(p) > 0 && p[0] == 'p' {
		_, after, found := cut(p[1:], '.')
		if !found {
			return 0, true // "pP": the process, any thread
		}
		p = after
	}
	if len(p) == 2 && p[0] == '-' && p[1] == '1' {
		return AllThreads, true
	}
	v, ok := parseHexFull(p)
	if !ok || v > 1<<31 {
		return 0, false
	}
	return int(v), true
}
