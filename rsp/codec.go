package rsp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
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
const DefaultPacketSize = 0x100000

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
	// lateAck (a client of qemu-system, which never waits for `+`): the
	// `+` for a packet received is sent with the next thing written, so
	// the peer is woken once, not twice. ackDue: one is owed.
	lateAck, ackDue bool
	// runs makes putHex run-length encode: the protocol allows it in
	// responses only, so servers set it and clients do not.
	runs    bool
	maxSize int    // largest accepted payload after decoding
	in      []byte // reused inbound buffer, grown up to maxSize
	pkt     []byte // the payload of the last evPacket (aliases in)
	bad     error  // why the last evBad was bad
	// into, when set, takes the data of a binary read reply ("b" then
	// the bytes) straight from the wire, without a copy through in: the
	// packet's payload is then "b" (pkt) followed by the intoN bytes
	// decoded at the front of into. intoN is -1 for any other packet.
	into  []byte
	intoN int

	wmu sync.Mutex
	// hold collects what send would write in held, for one write later
	// (holdWrites): requests sent back to back wake the peer once.
	hold bool
	held []byte
	out  []byte // the framed packet being built or last sent
	sum  byte   // running checksum of out after '$'
	wbuf []byte // scratch: an owed ack and the packet, written together
}

func newCodec(rw io.ReadWriter, maxSize int) *codec {
	if maxSize <= 0 {
		maxSize = DefaultPacketSize
	}
	return newCodecSizes(rw, maxSize, 2*maxSize+8)
}

func newCodecSizes(rw io.ReadWriter, maxIn, outCap int) *codec {
	return &codec{
		r:       bufio.NewReaderSize(rw, min(maxIn+16, 256<<10)),
		w:       rw,
		maxSize: maxIn,
		in:      make([]byte, 0, min(maxIn, 64<<10)),
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
				if c.lateAck {
					c.wmu.Lock()
					c.ackDue = true
					c.wmu.Unlock()
				} else if err := c.writeRaw('+'); err != nil {
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
	limit := c.maxSize
	var sum byte
	var bad error
	escaped := false
	c.intoN = -1
	// direct: the payload's "b" was taken and buf is c.into; prev is
	// then the byte before buf's first (for a run-length run).
	direct := false
	if c.into != nil {
		if p, err := c.r.Peek(1); err == nil && p[0] == 'b' {
			c.r.Discard(1)
			sum = 'b'
			direct = true
			buf, limit = c.into[:0:len(c.into)], len(c.into)
		}
	}
	for n := 0; ; n++ {
		if bad == nil && !escaped && c.r.Buffered() > 1 {
			// Fast path: decode the plain runs and escape pairs already
			// buffered; anything else takes the byte path below.
			win, _ := c.r.Peek(min(c.r.Buffered(), limit-len(buf)))
			n0 := len(buf)
			buf = slices.Grow(buf, len(win)) // c.in keeps the room, up to maxSize; into has it
			used, wrote, s := unescapeInto(buf[n0:cap(buf)], win)
			buf = buf[:n0+wrote]
			sum += s
			if used > 0 {
				c.r.Discard(used)
				n += used
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
		if n > 2*c.maxSize+64 || (bad == errTooLarge && n > c.maxSize+64<<10) {
			// More than the largest payload escaped byte by byte, or
			// long past the size it already exceeded: not a packet that
			// will end.
			return 0, errors.New("rsp: packet without end")
		}
		if b == '$' {
			// A new packet start inside a packet: the previous one was
			// cut short (a client that reconnected mid-packet). Restart,
			// in the reused buffer.
			buf, limit, sum, bad, escaped, direct = c.in[:0], c.maxSize, 0, nil, false, false
			continue
		}
		sum += b
		if bad != nil {
			continue
		}
		switch {
		case escaped:
			escaped = false
			if len(buf) == limit {
				bad = c.overflow(direct)
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
			if (len(buf) == 0 && !direct) || cnt < 0 {
				bad = errBadEscape
				continue
			}
			if len(buf)+cnt > limit {
				bad = c.overflow(direct)
				cnt = limit - len(buf)
			}
			prev := byte('b')
			if len(buf) > 0 {
				prev = buf[len(buf)-1]
			}
			for i := 0; i < cnt; i++ {
				buf = append(buf, prev)
			}
		default:
			if len(buf) == limit {
				bad = c.overflow(direct)
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
	if direct {
		c.in = append(c.in[:0], 'b')
	} else {
		c.in = buf
	}
	if bad != nil {
		c.bad = bad
		c.pkt = nil
		return evBad, nil
	}
	c.pkt = c.in
	if direct {
		c.intoN = len(buf)
	}
	return evPacket, nil
}

// overflow is why a payload that goes past its buffer is bad: it is too
// large, but for a binary read reply taken into place, whose bytes past
// the ones asked for are dropped (a copy of the reply would do the same).
func (c *codec) overflow(direct bool) error {
	if direct {
		return nil
	}
	return errTooLarge
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
	if c.ackDue {
		c.ackDue = false
		_, err := c.w.Write([]byte{'+', b})
		return err
	}
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
	start := len(c.out)
	c.out = slices.Grow(c.out, 2*len(p))
	n, sum := escapeInto(c.out[start:start+2*len(p)], p)
	c.out = c.out[:start+n]
	c.sum += sum
}

// readFunc reads up to len(p) bytes into p, like io.ReaderAt at an
// address fixed by the caller: a short count is "readable up to here".
type readFunc func(p []byte) (int, error)

// putRead appends up to n bytes that read places straight into the
// packet's spare room, escaped in place: the `x` reply with no copy
// besides the escaping pass. It returns what read returned.
func (c *codec) putRead(n int, read readFunc) (int, error) {
	start := len(c.out)
	c.out = slices.Grow(c.out, 2*n)[:start+2*n]
	// The bytes go in the second half and are escaped from the front:
	// each byte read makes at most two, so the writes stay behind.
	got, err := read(c.out[start+n : start+2*n])
	if got < 0 || got > n {
		got = 0
	}
	w, sum := escapeInto(c.out[start:start+2*got], c.out[start+n:start+n+got])
	c.out = c.out[:start+w]
	c.sum += sum
	return got, err
}

// putEscaped appends src escaped (a binary reply's data, from memory the
// target showed in place) and returns len(src).
func (c *codec) putEscaped(src []byte) int {
	start := len(c.out)
	c.out = slices.Grow(c.out, 2*len(src))[:start+2*len(src)]
	w, sum := escapeInto(c.out[start:], src)
	c.out = c.out[:start+w]
	c.sum += sum
	return len(src)
}

// putHexRead appends up to n bytes that read places in the packet's
// spare room, as hex (run-length encoded in responses): the `m` reply
// without a copy. It returns what read returned.
func (c *codec) putHexRead(n int, read readFunc) (int, error) {
	start := len(c.out)
	c.out = slices.Grow(c.out, 2*n)[:start+2*n]
	// The bytes go in the second half; hex digits are written from the
	// front, two for each byte already consumed.
	got, err := read(c.out[start+n : start+2*n])
	if got < 0 || got > n {
		got = 0
	}
	dst := c.out[start : start+2*got]
	sum := encodeHex(dst, c.out[start+n:start+n+got])
	if c.runs {
		if k := compressRuns(dst); k != len(dst) {
			dst = dst[:k]
			sum = sumBytes(dst)
		}
	}
	c.sum += sum
	c.out = c.out[:start+len(dst)]
	return got, err
}

const hexdigits = "0123456789abcdef"

// hexSum[b] is the sum of b's two hex digits, its share of the checksum.
var hexSum [256]byte

func init() {
	for b := range 256 {
		hexSum[b] = hexdigits[b>>4] + hexdigits[b&15]
	}
}

// putHex appends p as hex digits (no byte of hex needs escaping); in
// responses run-length encoded, which GDB and LLDB both decode (zeroed
// memory and registers shrink to a few bytes). It is the `m`, `g` and `p`
// hot path.
func (c *codec) putHex(p []byte) { c.putHexRuns(p, c.runs) }

// putHexRuns is putHex with run-length encoding chosen by the caller:
// text (`O` output) has almost no runs of hex digits to gain.
func (c *codec) putHexRuns(p []byte, runs bool) {
	n := len(c.out)
	c.out = slices.Grow(c.out, 2*len(p))[:n+2*len(p)]
	sum := encodeHex(c.out[n:], p)
	dst := c.out[n:]
	if runs {
		if k := compressRuns(dst); k != len(dst) {
			dst = dst[:k]
			sum = sumBytes(dst)
		}
	}
	c.sum += sum
	c.out = c.out[:n+len(dst)]
}

// hexWord[b] is b's two hex digits as a little-endian uint16.
var hexWord = func() (t [256]uint16) {
	for b := range t {
		t[b] = uint16(hexdigits[b>>4]) | uint16(hexdigits[b&15])<<8
	}
	return t
}()

// encodeHex writes src as hex digits to dst[:2*len(src)] and returns
// their sum modulo 256. dst may overlap src if it starts at least
// len(src) bytes before it (the digits never reach bytes not yet read).
func encodeHex(dst, src []byte) byte {
	dst = dst[:2*len(src)]
	var sum, acc uint64
	i, words := 0, 0
	for ; i+4 <= len(src); i += 4 {
		v := uint64(hexWord[src[i]]) | uint64(hexWord[src[i+1]])<<16 |
			uint64(hexWord[src[i+2]])<<32 | uint64(hexWord[src[i+3]])<<48
		binary.LittleEndian.PutUint64(dst[2*i:], v)
		acc += v&odd8 + (v>>8)&odd8
		if words++; words == 128 {
			sum += fold(acc)
			acc, words = 0, 0
		}
	}
	for ; i < len(src); i++ {
		b := src[i] // read once: the digits may overwrite it
		w := hexWord[b]
		dst[2*i], dst[2*i+1] = byte(w), byte(w>>8)
		sum += uint64(hexSum[b])
	}
	return byte(sum + fold(acc))
}

// compressRuns run-length encodes b in place and returns its new length:
// a character repeated k more times (3 <= k <= 97) becomes "c*" plus the
// character k+29. Counts 6 and 7 would encode as '#' and '$', which the
// protocol forbids, so such runs are cut at 5. b must hold no special
// characters (hex digits do not).
func compressRuns(b []byte) int {
	w, r := 0, 0
	for r < len(b) {
		// Copy up to the next run of four or more.
		s := nextRun(b, r)
		if w != r {
			copy(b[w:], b[r:s])
		}
		w += s - r
		r = s
		if r == len(b) {
			break
		}
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

// nextRun returns the index of the first of four or more equal bytes at
// or after i in b, or len(b): four bytes a step, with an eight-byte load
// that covers the three after each.
func nextRun(b []byte, i int) int {
	for ; i+8 <= len(b); i += 4 {
		w := binary.LittleEndian.Uint64(b[i:])
		x := w ^ w>>8         // byte k zero: b[i+k] == b[i+k+1]
		y := x | x>>8 | x>>16 // byte k zero: b[i+k..i+k+3] all equal
		if m := zeroByte(y | 0xffffffff00000000); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i+3 < len(b); i++ {
		if b[i] == b[i+1] && b[i] == b[i+2] && b[i] == b[i+3] {
			return i
		}
	}
	return len(b)
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
	if c.hold {
		if c.ackDue {
			c.ackDue = false
			c.held = append(c.held, '+')
		}
		c.held = append(c.held, c.out...)
		return nil
	}
	if c.ackDue {
		// The owed `+` and the packet in one write (out stays as sent,
		// for resend).
		c.ackDue = false
		if len(c.out) <= 4<<10 {
			c.wbuf = append(append(c.wbuf[:0], '+'), c.out...)
			_, err := c.w.Write(c.wbuf)
			return err
		}
		if _, err := c.w.Write(singleBytes['+' : '+'+1]); err != nil {
			return err
		}
	}
	_, err := c.w.Write(c.out)
	return err
}

// holdWrites starts or ends collecting sent packets; ending it writes
// what was collected.
func (c *codec) holdWrites(on bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hold = on
	if on || len(c.held) == 0 {
		return nil
	}
	_, err := c.w.Write(c.held)
	c.held = c.held[:0]
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

// hexVal is each byte's value as a hex digit, 0xff for non-digits.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < 16; i++ {
		t[hexdigits[i]] = byte(i)
		t["0123456789ABCDEF"[i]] = byte(i)
	}
	return t
}()

func unhex(b byte) (byte, bool) {
	v := hexVal[b]
	return v, v != 0xff
}

func unhex8(h, l byte) (byte, bool) {
	a, b := hexVal[h], hexVal[l]
	return a<<4 | b, a|b < 16
}

// hexPairVal maps two hex digits, read as a little-endian uint16, to
// their byte value, or to 0x100 and above when either is not a digit.
var hexPairVal = func() []uint16 {
	t := make([]uint16, 1<<16)
	for i := range t {
		a, b := hexVal[i&0xff], hexVal[i>>8]
		t[i] = uint16(a)<<4 | uint16(b)
		if a > 15 || b > 15 {
			t[i] = 0x100
		}
	}
	return t
}()

// decodeHex turns hex digit pairs of src into bytes of dst, as many as
// both hold; false at the first non-digit. dst may be src (in place).
func decodeHex(dst, src []byte) (int, bool) {
	n := min(len(dst), len(src)/2)
	src = src[:2*n]
	t := hexPairVal[:1<<16]
	i := 0
	// Four pairs a step, one test of the four values.
	for ; i+4 <= n; i += 4 {
		w := binary.LittleEndian.Uint64(src[2*i:])
		a, b, c, d := t[uint16(w)], t[uint16(w>>16)], t[uint16(w>>32)], t[uint16(w>>48)]
		if a|b|c|d > 0xff {
			break // the loop below finds which
		}
		binary.LittleEndian.PutUint32(dst[i:], uint32(a)|uint32(b)<<8|uint32(c)<<16|uint32(d)<<24)
	}
	for ; i < n; i++ {
		v := hexPairVal[binary.LittleEndian.Uint16(src[2*i:])]
		if v > 0xff {
			return i, false
		}
		dst[i] = byte(v)
	}
	return n, true
}

// decodeHexInPlace turns the hex digits in p into bytes at the front of
// p and returns them.
func decodeHexInPlace(p []byte) ([]byte, bool) {
	if len(p)%2 != 0 {
		return nil, false
	}
	n, ok := decodeHex(p, p)
	return p[:n], ok
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
