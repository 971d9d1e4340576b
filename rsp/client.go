package rsp

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrUnsupported is returned by Client methods when the stub answers a
// request with the empty reply.
var ErrUnsupported = errors.New("rsp: not supported by the stub")

// RemoteError is an `Exx` reply.
type RemoteError struct {
	Code    int
	Message string // from "E.text" or LLDB's "Exx;hex"; may be empty
	Request string // the packet that failed (truncated)
}

func (e *RemoteError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("rsp: %s: error %#x: %s", e.Request, e.Code, e.Message)
	}
	return fmt.Sprintf("rsp: %s: error %#x", e.Request, e.Code)
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClientLogger sets the client's logger (packets at debug level when
// WithClientPacketLog is on).
func WithClientLogger(l *slog.Logger) ClientOption { return func(c *Client) { c.log = l } }

// WithClientPacketLog logs every packet at debug level.
func WithClientPacketLog(on bool) ClientOption { return func(c *Client) { c.logPackets = on } }

// WithConsole receives the stub's `O` output that arrives while the
// target runs.
func WithConsole(w io.Writer) ClientOption { return func(c *Client) { c.console = w } }

// WithTimeout bounds each request/reply exchange (not the wait for a
// stop after a resume). Zero means no limit.
func WithTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// Client speaks RSP to a stub: ours, QEMU's gdbstub or gdbserver.
//
// Methods are safe for one caller at a time, except Interrupt, which may
// be called from another goroutine while Continue/Step/Resume waits.
type Client struct {
	conn       net.Conn
	c          *codec
	log        *slog.Logger
	logPackets bool
	console    io.Writer
	timeout    time.Duration
	watch      replyWatch // expires a reply that takes longer than timeout

	mu         sync.Mutex
	features   map[string]string
	packetSize int
	desc       *Description
	regnums    []int // wire regnum of each desc register
	noP        bool  // p/P answered empty: use g/G
	noX        bool  // X answered empty: use M
	binary     bool  // GDB-16 dialect x with 'b' prefix
	vCont      bool
	gbuf       []byte
	monitorBuf []byte // Monitor's decoding buffer, kept between commands

	ackPipeline bool // pipeline reads in ack mode too (SetLazyAcks)
	inFlight    bool // more than one request is in flight: a `-` cannot be answered
	gPending    bool // a `g` sent by StartReadRegisters awaits its reply
	mPending    int  // bytes asked for by an `m` StartReadMemory sent, awaiting its reply
}

// maxClientReply bounds one reply the client accepts (its buffer grows
// to it only for replies that need it): a 1 MiB `m` reply is 2 MiB of
// hex.
const maxClientReply = 4 << 20

// Dial connects to a stub at "host:port" or "unix:/path" and negotiates.
func Dial(addr string, opts ...ClientOption) (*Client, error) {
	network := "tcp"
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", p
	}
	conn, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(conn, opts...)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// NewClient negotiates on an open connection: qSupported, no-ack mode
// when offered, and the target description (target.xml with its
// xi:includes, or the default AMD64 layout when the stub has none).
func NewClient(conn net.Conn, opts ...ClientOption) (*Client, error) {
	c := &Client{conn: conn, packetSize: 0x400}
	for _, o := range opts {
		o(c)
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.watch.conn, c.watch.timeout = conn, c.timeout
	c.c = newCodecSizes(fastIO(conn), maxClientReply, 4096)
	if err := c.negotiate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) negotiate() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.Write([]byte{'+'})
	rep, err := c.exchange("qSupported:swbreak+;hwbreak+;vContSupported+;binary-upload+;xmlRegisters=i386")
	if err != nil {
		return fmt.Errorf("rsp: qSupported: %w", err)
	}
	if err := remoteErr(rep, "qSupported"); err != nil && err != ErrUnsupported {
		return err
	}
	c.features = map[string]string{}
	for _, f := range strings.Split(string(rep), ";") {
		switch {
		case strings.HasSuffix(f, "+"):
			c.features[strings.TrimSuffix(f, "+")] = "+"
		case strings.HasSuffix(f, "-"):
		case strings.Contains(f, "="):
			k, v, _ := strings.Cut(f, "=")
			c.features[k] = v
		}
	}
	if v, ok := c.features["PacketSize"]; ok {
		if n, err := strconv.ParseUint(v, 16, 31); err == nil && n >= 64 {
			c.packetSize = int(n)
		}
	}
	c.binary = c.features["binary-upload"] == "+"
	if c.features["QStartNoAckMode"] == "+" {
		rep, err := c.exchange("QStartNoAckMode")
		if err == nil && string(rep) == "OK" {
			c.c.noAck = true
		}
	}
	// Select a thread before asking for target.xml: gdbserver answers
	// from the current thread's description and aborts without one.
	if _, err := c.exchange("Hg0"); err != nil {
		return err
	}
	if c.features["qXfer:features:read"] == "+" {
		if err := c.loadDescription(); err != nil {
			return err
		}
	} else {
		c.desc = AMD64(AMD64Options{})
		c.regnums = make([]int, len(c.desc.Registers))
		for i := range c.regnums {
			c.regnums[i] = i
		}
	}
	rep, err = c.exchange("vCont?")
	c.vCont = err == nil && bytes.Contains(rep, []byte(";c")) && bytes.Contains(rep, []byte(";s"))
	return nil
}

// Features is the stub's qSupported reply as name → "+" or value.
func (c *Client) Features() map[string]string { return c.features }

// PacketSize is the stub's PacketSize.
func (c *Client) PacketSize() int { return c.packetSize }

// Description is the register layout the stub described.
func (c *Client) Description() *Description { return c.desc }

// SetLazyAcks is for a stub without no-ack mode that reads its input
// while it answers and never waits for the `+` of a reply before taking
// the next request (qemu-system's gdbstub; qemu-user's waits, and would
// take the next request for a bad acknowledgement). Memory reads then
// keep two requests in flight, and each `+` goes out with the next
// packet instead of on its own, so the stub is woken once a request.
func (c *Client) SetLazyAcks(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ackPipeline = on
	c.c.wmu.Lock()
	c.c.lateAck = on
	c.c.wmu.Unlock()
}

// Close closes the connection without detaching.
func (c *Client) Close() error { return c.conn.Close() }

// exchange sends pkt and returns the reply payload, valid until the next
// exchange. Caller holds c.mu.
func (c *Client) exchange(pkt string) ([]byte, error) {
	c.c.wmu.Lock()
	c.c.begin()
	c.c.putString(pkt)
	err := c.c.send()
	c.c.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	if c.logPackets {
		c.log.Debug("client ->", "packet", pkt)
	}
	return c.await(pkt)
}

// sendBuilt sends the packet built in c.c.out (between begin and now)
// and waits for the reply. Caller holds c.mu and c.c.wmu.
func (c *Client) sendBuilt(what string) ([]byte, error) {
	err := c.c.send()
	c.c.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	return c.await(what)
}

// await reads the reply to the last packet, retransmitting on '-' and
// skipping `O` output (which only stubs send before a final reply).
func (c *Client) await(what string) ([]byte, error) {
	if c.timeout > 0 {
		c.watch.begin()
		defer c.watch.end()
	}
	for tries := 0; tries < 1000; tries++ {
		ev, err := c.c.readEvent()
		if err != nil {
			return nil, err
		}
		switch ev {
		case evNack:
			if c.inFlight {
				// The last packet sent is not the one refused.
				return nil, fmt.Errorf("rsp: %s refused (-) with requests in flight", what)
			}
			if err := c.c.resend(); err != nil {
				return nil, err
			}
			continue
		case evBad:
			return nil, fmt.Errorf("rsp: bad reply to %s: %w", what, c.c.bad)
		case evInterrupt:
			continue
		}
		if c.logPackets {
			c.log.Debug("client <-", "packet", string(c.c.pkt))
		}
		return c.c.pkt, nil
	}
	return nil, fmt.Errorf("rsp: no reply to %s", what)
}

// remoteErr decodes an error reply, or returns nil for a normal one.
func remoteErr(rep []byte, req string) error {
	if len(rep) == 0 {
		return ErrUnsupported
	}
	if rep[0] != 'E' || len(rep) < 2 {
		return nil
	}
	if len(req) > 32 {
		req = req[:32]
	}
	if rep[1] == '.' {
		return &RemoteError{Code: -1, Message: string(rep[2:]), Request: req}
	}
	if len(rep) < 3 {
		return nil
	}
	code, ok := unhex8(rep[1], rep[2])
	if !ok {
		return nil // not an error reply: some data that starts with 'E'
	}
	e := &RemoteError{Code: int(code), Request: req}
	if len(rep) > 4 && rep[3] == ';' {
		if msg, ok := decodeHexInPlace(append([]byte(nil), rep[4:]...)); ok {
			e.Message = string(msg)
		}
	} else if len(rep) != 3 {
		return nil
	}
	return e
}

// Request sends a raw packet payload and returns the reply (a copy).
// Error replies come back as *RemoteError, the empty reply as
// ErrUnsupported.
func (c *Client) Request(pkt string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchange(pkt)
	if err != nil {
		return "", err
	}
	if err := remoteErr(rep, pkt); err != nil {
		return "", err
	}
	return string(rep), nil
}

// ---- target description

// xmlReg is a <reg> element; other attributes are ignored.
type xmlReg struct {
	Name    string `xml:"name,attr"`
	Bitsize int    `xml:"bitsize,attr"`
	Type    string `xml:"type,attr"`
	Regnum  *int   `xml:"regnum,attr"`
	Group   string `xml:"group,attr"`
	Generic string `xml:"generic,attr"`
	DWARF   *int   `xml:"dwarf_regnum,attr"`
}

type xmlInclude struct {
	Href string `xml:"href,attr"`
}

type xmlFeature struct {
	Name     string       `xml:"name,attr"`
	Regs     []xmlReg     `xml:"reg"`
	Includes []xmlInclude `xml:"include"`
}

type xmlTarget struct {
	Arch     string       `xml:"architecture"`
	OSABI    string       `xml:"osabi"`
	Features []xmlFeature `xml:"feature"`
	Includes []xmlInclude `xml:"include"`
	Regs     []xmlReg     `xml:"reg"` // a bare <feature> document has regs at the top
	Name     string       `xml:"name,attr"`
}

// ReadXfer reads a whole qXfer object (bounded to 16 MiB).
func (c *Client) ReadXfer(object, annex string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readXfer(object, annex)
}

// ReadAuxv reads the inferior's ELF auxiliary vector (qXfer:auxv:read,
// which qemu-user offers).
func (c *Client) ReadAuxv() ([]byte, error) {
	if c.features["qXfer:auxv:read"] != "+" {
		return nil, fmt.Errorf("rsp: the stub does not offer qXfer:auxv:read: %w", ErrUnsupported)
	}
	return c.ReadXfer("auxv", "")
}

func (c *Client) readXfer(object, annex string) ([]byte, error) {
	var doc []byte
	chunk := max(c.packetSize-16, 64)
	for len(doc) < 16<<20 {
		req := fmt.Sprintf("qXfer:%s:read:%s:%x,%x", object, annex, len(doc), chunk)
		rep, err := c.exchange(req)
		if err != nil {
			return nil, err
		}
		if err := remoteErr(rep, req); err != nil {
			return nil, err
		}
		switch rep[0] {
		case 'l':
			return append(doc, rep[1:]...), nil
		case 'm':
			if len(rep) == 1 {
				return nil, fmt.Errorf("rsp: %s: empty 'm' piece", req)
			}
			doc = append(doc, rep[1:]...)
		default:
			return nil, fmt.Errorf("rsp: %s: unexpected reply %q", req, rep[:min(len(rep), 16)])
		}
	}
	return nil, fmt.Errorf("rsp: qXfer %s too large", object)
}

// ParseTargetXML builds a Description from target.xml; fetch resolves
// xi:include (nil: includes are an error). Registers keep their wire
// numbers, returned in regnums (Description index → wire regnum).
func ParseTargetXML(doc []byte, fetch func(name string) ([]byte, error)) (*Description, []int, error) {
	type numbered struct {
		Register
		num int
	}
	var regs []numbered
	arch, osabi := "", ""
	next := 0
	var parse func(doc []byte, depth int) error
	addRegs := func(feature string, xr []xmlReg) {
		for _, r := range xr {
			num := next
			if r.Regnum != nil {
				num = *r.Regnum
			}
			next = num + 1
			dw := -1
			if r.DWARF != nil {
				dw = *r.DWARF
			}
			regs = append(regs, numbered{Register{Name: r.Name, Bits: r.Bitsize, Type: r.Type,
				Group: r.Group, Feature: feature, Generic: r.Generic, DWARF: dw}, num})
		}
	}
	parse = func(doc []byte, depth int) error {
		if depth > 4 {
			return errors.New("rsp: target.xml includes nest too deep")
		}
		var t xmlTarget
		if err := xml.Unmarshal(doc, &t); err != nil {
			return fmt.Errorf("rsp: parse target description: %w", err)
		}
		if t.Arch != "" {
			arch = t.Arch
		}
		if t.OSABI != "" {
			osabi = t.OSABI
		}
		addRegs(t.Name, t.Regs)
		includes := t.Includes
		for _, f := range t.Features {
			addRegs(f.Name, f.Regs)
			includes = append(includes, f.Includes...)
		}
		for _, inc := range includes {
			if fetch == nil {
				return fmt.Errorf("rsp: target.xml includes %q", inc.Href)
			}
			sub, err := fetch(inc.Href)
			if err != nil {
				return fmt.Errorf("rsp: fetch %s: %w", inc.Href, err)
			}
			if err := parse(sub, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := parse(doc, 0); err != nil {
		return nil, nil, err
	}
	if len(regs) == 0 {
		return nil, nil, errors.New("rsp: target description has no registers")
	}
	sort.SliceStable(regs, func(i, j int) bool { return regs[i].num < regs[j].num })
	out := make([]Register, len(regs))
	nums := make([]int, len(regs))
	for i, r := range regs {
		if r.Bits <= 0 || r.Bits%8 != 0 || r.Bits > 4096 {
			return nil, nil, fmt.Errorf("rsp: register %s has bitsize %d", r.Name, r.Bits)
		}
		out[i], nums[i] = r.Register, r.num
	}
	d := NewDescription(arch, out)
	d.OSABI = osabi
	// Stubs that do not say "generic" (QEMU): find pc/sp/fp by name.
	for name, p := range map[string]*int{"rip": &d.PC, "rsp": &d.SP, "rbp": &d.FP} {
		if *p < 0 {
			*p = d.Lookup(name)
		}
	}
	return d, nums, nil
}

func (c *Client) loadDescription() error {
	doc, err := c.readXfer("features", "target.xml")
	if err != nil {
		return fmt.Errorf("rsp: read target.xml: %w", err)
	}
	d, nums, err := ParseTargetXML(doc, func(name string) ([]byte, error) { return c.readXfer("features", name) })
	if err != nil {
		return err
	}
	c.desc, c.regnums = d, nums
	return nil
}

// ---- registers

// RegisterNum is the Description index of the register called name, or
// -1.
func (c *Client) RegisterNum(name string) int { return c.desc.Lookup(name) }

// ReadRegisters reads every register (a `g` packet) into a new slice
// laid out as Description.
func (c *Client) ReadRegisters() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.readG(); err != nil {
		return nil, err
	}
	return append([]byte(nil), c.gbuf...), nil
}

// StartReadRegisters sends a `g` and returns at once;
// FinishReadRegisters takes its reply. The caller sends nothing else in
// between: a proxy asks for the registers of a stop while it passes the
// stop on, and has them when its own client asks.
func (c *Client) StartReadRegisters() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gPending || c.mPending != 0 {
		return errors.New("rsp: a read is already pending")
	}
	if err := c.c.sendString("g"); err != nil {
		return err
	}
	if c.logPackets {
		c.log.Debug("client ->", "packet", "g")
	}
	c.gPending = true
	return nil
}

// FinishReadRegisters waits for the reply to StartReadRegisters' `g`
// and returns the registers as ReadRegisters does.
func (c *Client) FinishReadRegisters() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gPending {
		return nil, errors.New("rsp: no register read is pending")
	}
	c.gPending = false
	c.inFlight = c.mPending != 0 // an `m` follows this reply
	rep, err := c.await("g")
	c.inFlight = false
	if err != nil {
		return nil, err
	}
	if err := c.decodeG(rep); err != nil {
		return nil, err
	}
	return append([]byte(nil), c.gbuf...), nil
}

// HoldWrites(true) keeps the requests the Start calls send until
// HoldWrites(false), which writes them at once: the stub reads them
// together, and on a unix socket its reads then signal the connection
// writable once, not once a request (a wake-up of this process each).
func (c *Client) HoldWrites(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.holdWrites(on)
}

// StartReadMemory sends an `m` for n bytes at addr (one packet's worth)
// and returns at once; FinishReadMemory takes its reply. It may follow
// StartReadRegisters when the stub takes a request before its last reply
// is acknowledged (no-ack mode, or SetLazyAcks): the replies are then
// taken in the order sent, the registers first. The caller sends nothing
// else until it has taken them.
func (c *Client) StartReadMemory(addr uint64, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.mPending != 0:
		return errors.New("rsp: a memory read is already pending")
	case c.gPending && !c.c.noAck && !c.ackPipeline:
		return errors.New("rsp: the stub takes one request at a time")
	case n <= 0 || n > max((c.packetSize-8)/2, 1):
		return fmt.Errorf("rsp: %d bytes do not fit one m packet", n)
	}
	if err := c.sendRead(false, addr, n); err != nil {
		return err
	}
	if c.logPackets {
		c.log.Debug("client ->", "packet", fmt.Sprintf("m%x,%x", addr, n))
	}
	c.mPending = n
	return nil
}

// FinishReadMemory waits for the reply to StartReadMemory's `m` and
// decodes it into p (at least as long as the read), returning the count
// the stub gave.
func (c *Client) FinishReadMemory(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.mPending
	switch {
	case n == 0:
		return 0, errors.New("rsp: no memory read is pending")
	case c.gPending:
		return 0, errors.New("rsp: the register read sent first is still pending")
	case len(p) < n:
		return 0, fmt.Errorf("rsp: %d bytes pending, room for %d", n, len(p))
	}
	c.mPending = 0
	return c.recvRead(false, p[:n])
}

func (c *Client) readG() error {
	rep, err := c.exchange("g")
	if err != nil {
		return err
	}
	return c.decodeG(rep)
}

// decodeG decodes a `g` reply into c.gbuf.
func (c *Client) decodeG(rep []byte) error {
	if err := remoteErr(rep, "g"); err != nil {
		return err
	}
	// Some stubs send fewer registers than described (the rest are
	// unavailable, 'x' digits): keep what there is.
	c.gbuf = c.gbuf[:0]
	for i := 0; i+1 < len(rep); i += 2 {
		v, _ := unhex8(rep[i], rep[i+1])
		c.gbuf = append(c.gbuf, v)
	}
	if need := c.desc.Size(); len(c.gbuf) < need {
		c.gbuf = append(c.gbuf, make([]byte, need-len(c.gbuf))...)
	}
	return nil
}

// register checks that i is a register of the description and n its size.
func (c *Client) register(i, n int) (*Register, error) {
	if i < 0 || i >= len(c.desc.Registers) {
		return nil, fmt.Errorf("rsp: no register %d", i)
	}
	r := &c.desc.Registers[i]
	if n != r.Size() {
		return nil, fmt.Errorf("rsp: register %s has %d bytes, not %d", r.Name, r.Size(), n)
	}
	return r, nil
}

// ReadRegister reads register i (a Description index) into dst, which
// must be its size, with `p`, or `g` when the stub has no `p`.
func (c *Client) ReadRegister(i int, dst []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.register(i, len(dst))
	if err != nil {
		return err
	}
	if !c.noP {
		c.c.wmu.Lock()
		c.c.begin()
		c.c.putByte('p')
		c.c.putUint(uint64(c.regnums[i]))
		rep, err := c.sendBuilt("p")
		if err != nil {
			return err
		}
		if len(rep) == 0 {
			c.noP = true
		} else {
			if err := remoteErr(rep, "p"); err != nil {
				return err
			}
			if len(rep) < 2*len(dst) {
				return fmt.Errorf("rsp: short p reply for %s", r.Name)
			}
			for j := range dst {
				dst[j], _ = unhex8(rep[2*j], rep[2*j+1]) // 'xx' (unavailable) reads as 0
			}
			return nil
		}
	}
	if err := c.readG(); err != nil {
		return err
	}
	copy(dst, c.gbuf[r.Offset:r.Offset+r.Size()])
	return nil
}

// ReadRegisterUint reads a register of up to 64 bits by name.
func (c *Client) ReadRegisterUint(name string) (uint64, error) {
	i := c.desc.Lookup(name)
	if i < 0 {
		return 0, fmt.Errorf("rsp: no register %q", name)
	}
	var b [8]byte
	n := c.desc.Registers[i].Size()
	if n > 8 {
		return 0, fmt.Errorf("rsp: register %q has %d bytes", name, n)
	}
	if err := c.ReadRegister(i, b[:n]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// WriteRegister sets register i from src, with `P`, or `g`+`G`.
func (c *Client) WriteRegister(i int, src []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.register(i, len(src))
	if err != nil {
		return err
	}
	if !c.noP {
		c.c.wmu.Lock()
		c.c.begin()
		c.c.putByte('P')
		c.c.putUint(uint64(c.regnums[i]))
		c.c.putByte('=')
		c.c.putHex(src)
		rep, err := c.sendBuilt("P")
		if err != nil {
			return err
		}
		if len(rep) != 0 {
			return remoteErr(rep, "P")
		}
		c.noP = true
	}
	if err := c.readG(); err != nil {
		return err
	}
	copy(c.gbuf[r.Offset:], src)
	c.c.wmu.Lock()
	c.c.begin()
	c.c.putByte('G')
	c.c.putHex(c.gbuf)
	rep, err := c.sendBuilt("G")
	if err != nil {
		return err
	}
	return remoteErr(rep, "G")
}

// WriteRegisterUint sets a register of up to 64 bits by name.
func (c *Client) WriteRegisterUint(name string, v uint64) error {
	i := c.desc.Lookup(name)
	if i < 0 {
		return fmt.Errorf("rsp: no register %q", name)
	}
	n := c.desc.Registers[i].Size()
	if n > 8 {
		return fmt.Errorf("rsp: register %q has %d bytes", name, n)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return c.WriteRegister(i, b[:n])
}

// ---- memory

// ReadMemoryPacket reads at most one packet's worth at addr into p with
// `m` (binary false) or `x` (binary true, either dialect), and returns the
// count the stub gave.
func (c *Client) ReadMemoryPacket(binary bool, addr uint64, p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readPacket(binary, addr, p)
}

func (c *Client) readPacket(bin bool, addr uint64, p []byte) (int, error) {
	if err := c.sendRead(bin, addr, len(p)); err != nil {
		return 0, err
	}
	return c.recvRead(bin, p)
}

// sendRead sends an `x` (bin) or `m` request for n bytes at addr.
func (c *Client) sendRead(bin bool, addr uint64, n int) error {
	c.c.wmu.Lock()
	defer c.c.wmu.Unlock()
	c.c.begin()
	if bin {
		c.c.putByte('x')
	} else {
		c.c.putByte('m')
	}
	c.c.putUint(addr)
	c.c.putByte(',')
	c.c.putUint(uint64(n))
	return c.c.send()
}

// recvRead waits for the reply to a read request for len(p) bytes and
// decodes it into p.
func (c *Client) recvRead(bin bool, p []byte) (int, error) {
	if bin && c.binary {
		// The data goes from the wire straight into p.
		c.c.into = p
	}
	rep, err := c.await("m")
	c.c.into = nil
	if err != nil {
		return 0, err
	}
	if bin {
		if len(rep) == 0 {
			return 0, ErrUnsupported
		}
		if c.binary {
			if c.c.intoN >= 0 {
				return c.c.intoN, nil
			}
			if rep[0] == 'b' {
				return copy(p, rep[1:]), nil
			}
			return 0, remoteErr(rep, "x")
		}
		// LLDB's dialect: raw data; an 'E' reply of three bytes is an
		// error only when we asked for something else.
		if e := remoteErr(rep, "x"); e != nil && len(p) != len(rep) {
			return 0, e
		}
		return copy(p, rep), nil
	}
	if err := remoteErr(rep, "m"); err != nil {
		return 0, err
	}
	n, ok := decodeHex(p, rep)
	if !ok {
		return n, fmt.Errorf("rsp: bad hex in m reply")
	}
	return n, nil
}

// ReadMemory reads len(p) bytes at addr in packet-sized pieces and
// returns how many were readable. When the stub rejects a whole read that
// crosses into unmapped memory (QEMU), it narrows the read to find the
// readable prefix.
func (c *Client) ReadMemory(addr uint64, p []byte) (int, error) {
	return c.ReadMemoryAs(c.binary, addr, p)
}

// ReadMemoryAs is ReadMemory with `x` (binary, either dialect) or `m`
// packets, for comparisons; `x` needs a stub that has it.
func (c *Client) ReadMemoryAs(binary bool, addr uint64, p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	chunk := max((c.packetSize-8)/2, 1)
	if binary {
		chunk = max(c.packetSize-8, 1)
	}
	total := 0
	if (c.c.noAck || c.ackPipeline) && len(p) > chunk {
		n, rejected, err := c.readPipelined(binary, addr, p, chunk)
		if err != nil || !rejected {
			return n, err
		}
		// A stub that rejects a whole read crossing into unmapped
		// memory: find the readable prefix of the rest one read at a
		// time, as below.
		total = n
	}
	for total < len(p) {
		want := min(chunk, len(p)-total)
		n, err := c.readPacket(binary, addr+uint64(total), p[total:total+want])
		if err != nil {
			var re *RemoteError
			if !errors.As(err, &re) {
				return total, err
			}
			if want == 1 {
				if total == 0 {
					return 0, err
				}
				return total, nil
			}
			chunk = max(want/2, 1) // narrow down to the readable prefix
			continue
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total, nil
}

// readPipelined reads p in chunks with two requests in flight, so that
// the stub builds the next reply while this side decodes the last one.
// Only in no-ack mode, where a stub reads requests in order and nothing
// waits for an acknowledgement, or with a stub known to take requests
// while its replies are unacknowledged (SetLazyAcks). The first
// short or rejected reply ends the read (rejected reports the latter);
// the replies still in flight are read and dropped.
func (c *Client) readPipelined(bin bool, addr uint64, p []byte, chunk int) (total int, rejected bool, err error) {
	const depth = 2
	c.inFlight = true
	defer func() { c.inFlight = false }()
	var pending [depth]int // sizes in flight, oldest first
	inflight, sent := 0, 0
	done := false
	for (!done && total < len(p)) || inflight > 0 {
		for !done && inflight < depth && sent < len(p) {
			n := min(chunk, len(p)-sent)
			if err := c.sendRead(bin, addr+uint64(sent), n); err != nil {
				return total, false, err
			}
			pending[inflight] = n
			inflight++
			sent += n
		}
		want := pending[0]
		copy(pending[:], pending[1:])
		inflight--
		if done {
			if _, err := c.await("m"); err != nil {
				return total, false, err
			}
			continue
		}
		n, err := c.recvRead(bin, p[total:total+want])
		if err != nil {
			var re *RemoteError
			if !errors.As(err, &re) {
				return total, false, err // the connection is in doubt
			}
			done, rejected = true, true
			continue
		}
		total += n
		done = n < want // a short read: readable up to here
	}
	return total, rejected, nil
}

// WriteMemory writes p at addr with `X`, or `M` when the stub has no
// `X` (QEMU).
func (c *Client) WriteMemory(addr uint64, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	chunk := max((c.packetSize-32)/2, 1)
	for len(p) > 0 {
		n := min(chunk, len(p))
		c.c.wmu.Lock()
		c.c.begin()
		if c.noX {
			c.c.putByte('M')
		} else {
			c.c.putByte('X')
		}
		c.c.putUint(addr)
		c.c.putByte(',')
		c.c.putUint(uint64(n))
		c.c.putByte(':')
		if c.noX {
			c.c.putHex(p[:n])
		} else {
			c.c.putBytes(p[:n])
		}
		rep, err := c.sendBuilt("X")
		if err != nil {
			return err
		}
		if len(rep) == 0 && !c.noX {
			c.noX = true
			continue
		}
		if err := remoteErr(rep, "X/M"); err != nil {
			return err
		}
		addr += uint64(n)
		p = p[n:]
	}
	return nil
}

// ---- breakpoints

// SetBreakpoint inserts a breakpoint or watchpoint (Z).
func (c *Client) SetBreakpoint(kind BreakKind, addr uint64, size int) error {
	return c.breakpoint('Z', kind, addr, size)
}

// RemoveBreakpoint removes it (z).
func (c *Client) RemoveBreakpoint(kind BreakKind, addr uint64, size int) error {
	return c.breakpoint('z', kind, addr, size)
}

func (c *Client) breakpoint(op byte, kind BreakKind, addr uint64, size int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.wmu.Lock()
	c.c.begin()
	c.c.putByte(op)
	c.c.putByte('0' + byte(kind))
	c.c.putByte(',')
	c.c.putUint(addr)
	c.c.putByte(',')
	c.c.putUint(uint64(size))
	rep, err := c.sendBuilt("Z")
	if err != nil {
		return err
	}
	return remoteErr(rep, "Z/z")
}

// ---- execution

// StopReason asks why the target is stopped (`?`).
func (c *Client) StopReason() (Stop, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.exchange("?")
	if err != nil {
		return Stop{}, err
	}
	return c.stopFrom(rep)
}

// Continue resumes every thread and waits for the next stop.
func (c *Client) Continue() (Stop, error) {
	return c.Resume([]ResumeAction{{Thread: AllThreads}})
}

// Step single-steps and waits for the stop.
func (c *Client) Step() (Stop, error) {
	return c.Resume([]ResumeAction{{Thread: AllThreads, Step: true}})
}

// Resume sends the actions (as vCont, or c/s/C/S when the stub has no
// vCont and there is a single default action) and waits for the stop.
// Call Interrupt from another goroutine to stop a long run.
//
// A stop that only reports a library change (SIGTRAP with library:, as
// rspstub sends before the real stop) is taken as GDB takes it: the
// actions are sent again, and the final stop has Library set.
func (c *Client) Resume(actions []ResumeAction) (Stop, error) {
	libs := false
	for i := 0; ; i++ {
		st, err := c.resume1(actions)
		if err != nil || !(st.Library && st.Kind == StopSignal && st.Signal == SIGTRAP && st.Description == "") || i >= maxLibraryEvents {
			st.Library = st.Library || libs
			return st, err
		}
		libs = true
	}
}

// maxLibraryEvents bounds library-only stops followed in one Resume.
const maxLibraryEvents = 10000

func (c *Client) resume1(actions []ResumeAction) (Stop, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	if c.vCont {
		b.WriteString("vCont")
		for _, a := range actions {
			b.WriteByte(';')
			switch {
			case a.RangeStart < a.RangeEnd:
				fmt.Fprintf(&b, "r%x,%x", a.RangeStart, a.RangeEnd)
			case a.Step && a.Signal != 0:
				fmt.Fprintf(&b, "S%02x", a.Signal)
			case a.Step:
				b.WriteByte('s')
			case a.Signal != 0:
				fmt.Fprintf(&b, "C%02x", a.Signal)
			default:
				b.WriteByte('c')
			}
			if a.Thread != AllThreads {
				fmt.Fprintf(&b, ":%x", a.Thread)
			}
		}
	} else {
		if len(actions) != 1 || actions[0].RangeStart < actions[0].RangeEnd {
			return Stop{}, fmt.Errorf("rsp: stub has no vCont: %w", ErrUnsupported)
		}
		a := actions[0]
		if a.Thread != AllThreads {
			if _, err := c.exchange(fmt.Sprintf("Hc%x", a.Thread)); err != nil {
				return Stop{}, err
			}
		}
		op := byte('c')
		if a.Step {
			op = 's'
		}
		if a.Signal != 0 {
			fmt.Fprintf(&b, "%c%02x", op-0x20, a.Signal)
		} else {
			b.WriteByte(op)
		}
	}
	return c.sendResume(b.String())
}

// ReverseStep sends bs (reverse-stepi) and waits for the stop: the stub
// must advertise ReverseStep+ (rspstub serve --record).
func (c *Client) ReverseStep() (Stop, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendResume("bs")
}

// ReverseContinue sends bc (reverse-continue) and waits for the stop;
// Stop.ReplayLog is "begin" when it went back to the recording's start.
func (c *Client) ReverseContinue() (Stop, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendResume("bc")
}

// sendResume sends a packet that runs the target and waits for its stop
// reply, passing console output on.
func (c *Client) sendResume(req string) (Stop, error) {
	c.c.wmu.Lock()
	c.c.begin()
	c.c.putString(req)
	err := c.c.send()
	c.c.wmu.Unlock()
	if err != nil {
		return Stop{}, err
	}
	for {
		rep, err := c.awaitStop(req)
		if err != nil {
			return Stop{}, err
		}
		if len(rep) > 0 && rep[0] == 'O' && len(rep) > 1 && len(rep)%2 == 1 {
			if out, ok := decodeHexInPlace(rep[1:]); ok {
				if c.console != nil {
					c.console.Write(out)
				}
				continue
			}
		}
		return c.stopFrom(rep)
	}
}

func (c *Client) awaitStop(req string) ([]byte, error) {
	for {
		ev, err := c.c.readEvent()
		if err != nil {
			return nil, err
		}
		switch ev {
		case evNack:
			if err := c.c.resend(); err != nil {
				return nil, err
			}
		case evBad:
			return nil, fmt.Errorf("rsp: bad stop reply: %w", c.c.bad)
		case evPacket:
			if c.logPackets {
				c.log.Debug("client <-", "packet", string(c.c.pkt))
			}
			return c.c.pkt, nil
		}
	}
}

// Interrupt sends 0x03 to stop a running target; the waiting Resume
// returns the stop. Safe to call from any goroutine.
func (c *Client) Interrupt() error { return c.c.writeRaw(0x03) }

func (c *Client) stopFrom(rep []byte) (Stop, error) {
	if err := remoteErr(rep, "stop"); err != nil {
		return Stop{}, err
	}
	return ParseStop(rep)
}

// ParseStop decodes a stop reply (S, T, W, X). Unknown fields are
// ignored; expedited registers are skipped.
func ParseStop(rep []byte) (Stop, error) {
	var st Stop
	if len(rep) < 3 {
		return st, fmt.Errorf("rsp: short stop reply %q", rep)
	}
	v, ok := unhex8(rep[1], rep[2])
	if !ok {
		return st, fmt.Errorf("rsp: bad stop reply %q", rep[:3])
	}
	switch rep[0] {
	case 'W':
		st.Kind, st.ExitCode = StopExited, int(v)
		return st, nil
	case 'X':
		st.Kind, st.Signal = StopTerminated, int(v)
		return st, nil
	case 'S':
		st.Kind, st.Signal = StopSignal, int(v)
		return st, nil
	case 'T':
	default:
		return st, fmt.Errorf("rsp: not a stop reply: %q", rep[:min(len(rep), 16)])
	}
	st.Kind, st.Signal = StopSignal, int(v)
	rest := rep[3:]
	for n := 0; len(rest) > 0 && n < 4096; n++ {
		var field []byte
		field, rest, _ = cut(rest, ';')
		key, val, _ := cut(field, ':')
		switch string(key) {
		case "thread":
			if tid, ok := parseThreadID(val); ok && tid > 0 {
				st.Thread = tid
			}
		case "swbreak":
			st.Kind = StopSWBreak
		case "hwbreak":
			st.Kind = StopHWBreak
		case "watch", "rwatch", "awatch":
			st.Kind = map[string]StopKind{"watch": StopWatch, "rwatch": StopRWatch, "awatch": StopAWatch}[string(key)]
			st.Addr, _ = parseHexFull(val)
		case "replaylog":
			st.ReplayLog = string(val)
		case "library":
			st.Library = true
		case "description":
			if d, ok := decodeHexInPlace(val); ok {
				st.Description = string(d)
			}
		case "reason":
			if string(val) == "breakpoint" && st.Kind == StopSignal {
				st.Kind = StopSWBreak
			}
		}
	}
	return st, nil
}

// ---- monitor and lifecycle

// Monitor runs a monitor command (qRcmd) and returns its output.
func (c *Client) Monitor(cmd string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The output is decoded into a buffer kept for the next command (a
	// long backtrace is megabytes); the string is the one copy made.
	out := c.monitorBuf[:0]
	defer func() { c.monitorBuf = out[:0] }()
	c.c.wmu.Lock()
	c.c.begin()
	c.c.putString("qRcmd,")
	c.c.putHexString(cmd)
	err := c.c.send()
	c.c.wmu.Unlock()
	if err != nil {
		return "", err
	}
	for i := 0; i < 1<<20; i++ {
		rep, err := c.awaitStop("qRcmd")
		if err != nil {
			return string(out), err
		}
		switch {
		case len(rep) == 0:
			return "", ErrUnsupported
		case string(rep) == "OK":
			return string(out), nil
		case rep[0] == 'O' && len(rep)%2 == 1:
			n, need := len(out), len(rep)/2
			if cap(out)-n < need {
				// At least doubled: a long output is megabytes, and
				// append's growth by a quarter would copy it many times.
				out = slices.Grow(out, max(need, cap(out)))
			}
			out = out[:n+need]
			if _, ok := decodeHex(out[n:], rep[1:]); ok {
				continue
			}
			out = out[:n]
		}
		if err := remoteErr(rep, "qRcmd"); err != nil {
			return string(out), err
		}
		// QEMU answers with hex output and no O packets.
		if b, ok := decodeHexInPlace(rep); ok {
			return string(append(out, b...)), nil
		}
		return string(out), fmt.Errorf("rsp: unexpected qRcmd reply %q", rep[:min(len(rep), 16)])
	}
	return string(out), errors.New("rsp: qRcmd output without end")
}

// Detach detaches (D) and closes the connection; the target keeps
// running or stays stopped as the stub decides.
func (c *Client) Detach() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.conn.Close()
	rep, err := c.exchange("D")
	if err != nil {
		return err
	}
	return remoteErr(rep, "D")
}

// Kill ends the target (k) and closes the connection. Stubs need not
// answer k; a reply is read for up to a second.
func (c *Client) Kill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.conn.Close()
	c.c.wmu.Lock()
	c.c.begin()
	c.c.putByte('k')
	err := c.c.send()
	c.c.wmu.Unlock()
	if err != nil {
		return err
	}
	c.conn.SetReadDeadline(time.Now().Add(time.Second))
	c.c.readEvent()
	return nil
}
