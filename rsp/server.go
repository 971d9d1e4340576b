package rsp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Offsetter is implemented by targets whose main image is not where its
// file says; it enables qOffsets. Without it qOffsets answers empty and
// clients assume no relocation.
type Offsetter interface {
	Offsets() (text, data uint64, err error)
}

// ErrKilled is returned by Serve after a client killed the target.
var ErrKilled = errors.New("rsp: target killed by the debugger")

// ErrExited is returned by Serve when the session in which the target
// exited (or was terminated) ends: there is nothing left to debug.
var ErrExited = errors.New("rsp: the target exited")

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("rsp: server closed")

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithPacketLog logs every packet in and out at debug level.
func WithPacketLog(on bool) Option { return func(s *Server) { s.logPackets = on } }

// WithPacketSize sets the advertised and enforced PacketSize (default
// DefaultPacketSize; at least 256).
func WithPacketSize(n int) Option {
	return func(s *Server) {
		if n < 256 {
			n = 256
		}
		s.packetSize = n
	}
}

// Server serves one Target to one debugger at a time.
type Server struct {
	target     Target
	log        *slog.Logger
	logPackets bool
	packetSize int
	f          features
	table      dispatch
	supported  string // qSupported reply without the client-dependent part

	mu       sync.Mutex
	active   bool
	ended    chan struct{} // closed when the active session ends
	closed   bool
	killed   bool
	exited   bool // the guest exited and its debugger left
	extended bool // a client asked for extended mode: serve on after an exit
	listener net.Listener

	started   time.Time
	packets   atomic.Uint64 // dispatched, all sessions (monitor stub-stats)
	sessions  atomic.Uint64
	condFalse atomic.Uint64 // breakpoint hits swallowed by a false condition
}

// NewServer makes a server for t. The optional interfaces t implements
// are discovered here, once: they decide both what qSupported advertises
// and which packets are dispatched.
func NewServer(t Target, opts ...Option) *Server {
	s := &Server{target: t, packetSize: DefaultPacketSize, started: time.Now()}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.f = discover(t)
	s.table = buildDispatch(&s.f)
	s.supported = s.f.supported(s.packetSize)
	return s
}

// Listen opens a listener for addr: "host:port" for TCP or "unix:/path"
// for a unix socket. A TCP address that is not loopback is allowed but
// logged as a warning: RSP has no authentication, anyone who connects
// controls the guest.
func Listen(addr string, log *slog.Logger) (net.Listener, error) {
	if log == nil {
		log = slog.Default()
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			// A stale socket from an earlier run.
			os.Remove(path)
		}
		return net.Listen("unix", path)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("rsp: listen address %q: %w", addr, err)
	}
	if host == "" {
		return nil, fmt.Errorf("rsp: listen address %q has no host; use 127.0.0.1:PORT (or 0.0.0.0:PORT to expose it)", addr)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Warn("RSP server listening on a non-loopback address; the protocol has no authentication and anyone who connects controls the guest", "addr", addr)
	}
	return net.Listen("tcp", addr)
}

// Serve accepts debuggers on l, one at a time: a client that connects
// while another is attached is told so and disconnected. It returns when
// l fails, after Close (ErrServerClosed), when the debugger of a target
// that exited leaves (ErrExited), or after a client killed the
// target (ErrKilled). The guest keeps its state between clients.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listener = l
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed, killed, exited := s.closed, s.killed, s.exited
			s.mu.Unlock()
			switch {
			case killed:
				return ErrKilled
			case exited:
				return ErrExited
			case closed:
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go s.admit(c)
	}
}

// admitWait is how long a new client waits for the session before it to
// end. A client that closes its connection and reconnects at once (a
// script, GDB's disconnect + target remote) arrives while the stub is
// still ending the old session; it must be served, not refused. Sessions
// end in milliseconds on an idle machine; 500 ms was once too short on a
// loaded one (a client behind 20 that had vanished mid-request was
// refused), and a real second debugger only waits longer for its refusal.
const admitWait = 2 * time.Second

// admit serves c once no other session is active, or refuses it when one
// still is after admitWait. The wait is bounded by that time alone: every
// session that ends wakes all the waiting clients and serves one, so a
// bound on wake-ups refused a client queued behind many short sessions
// (TestReliabilityClientVanishes: the 21st of 21 connections, with 16,
// in CI).
func (s *Server) admit(c net.Conn) {
	deadline := time.NewTimer(admitWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.closed || s.killed || s.exited {
			s.mu.Unlock()
			c.Close()
			return
		}
		if !s.active {
			s.active = true
			ended := make(chan struct{})
			s.ended = ended
			s.mu.Unlock()
			s.serveConn(c)
			s.mu.Lock()
			s.active = false
			s.mu.Unlock()
			close(ended)
			return
		}
		ended := s.ended
		s.mu.Unlock()
		select {
		case <-ended:
			continue
		case <-deadline.C:
		}
		s.log.Warn("refusing a second debugger while one is attached", "remote", c.RemoteAddr().String())
		refuse(c, s.packetSize)
		return
	}
}

// ServeConn runs one session on c until it ends. It is what Serve does
// for each client; tests use it over net.Pipe. It returns ErrKilled if the
// client killed the target.
func (s *Server) ServeConn(c net.Conn) error {
	s.mu.Lock()
	if s.active {
		s.mu.Unlock()
		refuse(c, s.packetSize)
		return errors.New("rsp: a debugger is already attached")
	}
	s.active = true
	ended := make(chan struct{})
	s.ended = ended
	s.mu.Unlock()
	s.serveConn(c)
	s.mu.Lock()
	s.active = false
	killed, exited := s.killed, s.exited
	s.mu.Unlock()
	close(ended)
	switch {
	case killed:
		return ErrKilled
	case exited:
		return ErrExited
	}
	return nil
}

// Close stops Serve. An attached session continues until its client
// leaves.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	l := s.listener
	s.mu.Unlock()
	if l != nil {
		return l.Close()
	}
	return nil
}

const refuseMessage = "E.rspstub: another debugger is already attached to this target"

// refuse answers the first packet of an unwanted client with an error
// that names the reason (GDB prints it), then hangs up.
func refuse(c net.Conn, size int) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	cd := newCodec(c, size)
	for i := 0; i < 4; i++ {
		ev, err := cd.readEvent()
		if err != nil {
			return
		}
		if ev == evPacket || ev == evBad {
			cd.sendString(refuseMessage)
			return
		}
	}
}

func (s *Server) serveConn(c net.Conn) {
	ss := newSession(s, c)
	s.sessions.Add(1)
	s.log.Info("debugger attached", "remote", c.RemoteAddr().String())
	ss.run()
	s.log.Info("debugger detached", "remote", c.RemoteAddr().String(), "reason", ss.endReason)
	// A guest that has exited has nothing left to debug: like gdbserver,
	// stop serving once its debugger leaves.
	last := s.target.LastStop()
	exited := last.Kind == StopExited || last.Kind == StopTerminated
	s.mu.Lock()
	extended := s.extended
	s.mu.Unlock()
	if extended && !ss.killed {
		// gdbserver --multi: the next client may run the program again.
		exited = false
	}
	if ss.killed || exited {
		s.mu.Lock()
		s.killed = s.killed || ss.killed
		s.exited = s.exited || (exited && !ss.killed)
		l := s.listener
		s.mu.Unlock()
		if l != nil {
			l.Close()
		}
	}
}

// sessionState is the state machine of a session:
//
//	stopped --c/s/vCont--> running --target stops--> stopped
//	   |                      |
//	   +--D/k/EOF/error-------+--> closed
//
// In stopped every packet is handled; in running only 0x03 (interrupt)
// is, and a disconnect interrupts the target and keeps its stop for the
// next client.
type sessionState int32

const (
	stateStopped sessionState = iota
	stateRunning
	stateClosed
)

func (st sessionState) String() string {
	switch st {
	case stateStopped:
		return "stopped"
	case stateRunning:
		return "running"
	}
	return "closed"
}

// session is one debugger connection.
type session struct {
	srv  *Server
	t    Target
	f    *features
	desc *Description
	conn net.Conn
	c    *codec
	log  *slog.Logger

	state       atomic.Int32
	resumeDone  chan struct{}
	interrupted atomic.Bool
	inResume    atomic.Bool // true while Target.Resume (or the step loop) runs
	endReason   string
	killed      bool
	extended    bool // `!` was received (extended-remote)

	// What the client said it understands.
	lldb         bool
	held         *Stop // a stop to report on the next resume (see runTarget)
	swbreak      bool
	hwbreak      bool
	binaryUpload bool
	multiprocess bool // thread ids go out as p<pid>.<tid>
	pid          int  // the pid of those ids (ProcessInfo, else 1)
	threadSuffix bool
	listThreads  bool
	errorStrings bool

	gThread, cThread int
	bps              breakTable // the client's code breakpoints (breaks.go)
	conds            [maxConditions][]byte
	ax               axMachine // evaluates breakpoint conditions (agent.go)
	axTID            int       // the thread they look at
	axBuf            [8]byte

	regs    []byte // scratch: a whole `g` block
	mem     []byte // scratch: vFile:pread data
	mr      memReader
	mrRead  readFunc // mr.read, bound once (a method value allocates)
	threads []ThreadInfo
	actions []ResumeAction
	stepAct [1]ResumeAction
	xfer    []byte // the qXfer document being read
	xferKey string
	tinfo   int // qsThreadInfo cursor
	files   [maxOpenFiles]File
	console consoleWriter
}

const maxOpenFiles = 32

func newSession(s *Server, c net.Conn) *session {
	ss := &session{
		srv:  s,
		t:    s.target,
		f:    &s.f,
		desc: s.target.Description(),
		conn: c,
		c:    newServerCodec(fastIO(c), s.packetSize),
		log:  s.log,
	}
	ss.regs = make([]byte, ss.desc.Size())
	ss.mem = make([]byte, s.packetSize)
	ss.mrRead = ss.mr.read
	ss.actions = make([]ResumeAction, 0, 8)
	ss.console.s = ss
	return ss
}

func (s *session) getState() sessionState { return sessionState(s.state.Load()) }

func (s *session) run() {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("session ended by a panic; the stub keeps serving", "panic", r)
			s.endReason = fmt.Sprint("panic: ", r)
			if s.getState() == stateRunning {
				s.t.Interrupt()
			}
		}
		s.close()
	}()
	if s.f.console != nil {
		s.f.console.SetConsole(&s.console)
	}
	for s.getState() != stateClosed {
		ev, err := s.c.readEvent()
		if err != nil {
			if s.endReason == "" {
				s.endReason = err.Error()
			}
			if s.getState() == stateRunning {
				// The client left mid-run: stop the guest and keep the
				// stop for whoever connects next.
				s.interrupt()
			}
			s.waitResume()
			return
		}
		switch ev {
		case evInterrupt:
			if s.getState() == stateRunning {
				s.interrupt()
			}
		case evNack:
			if err := s.c.resend(); err != nil {
				s.endReason = err.Error()
				return
			}
		case evBad:
			if s.getState() == stateRunning {
				continue
			}
			if !s.finish(replyErr(eINVAL, s.c.bad)) {
				return
			}
		case evPacket:
			if s.getState() == stateRunning {
				// All-stop clients send nothing but 0x03 while the
				// target runs; anything else stops it first.
				s.interrupt()
			}
			s.waitResume()
			if s.srv.logPackets {
				s.log.Debug("rsp <-", "packet", string(s.c.pkt))
			}
			s.srv.packets.Add(1)
			if !s.finish(s.dispatch(s.c.pkt)) {
				return
			}
		}
	}
}

// interrupt stops a running target. A 0x03 can arrive before the resume
// goroutine has entered Target.Resume, when a target may ignore it
// ("harmless when not running"), so it is repeated every 50 ms (for at
// most 10 s) until Resume returns. Only the first 0x03 of a run does
// this: a flood of them must not start a goroutine each.
func (s *session) interrupt() {
	if s.interrupted.Swap(true) {
		return
	}
	s.t.Interrupt()
	done := s.resumeDone
	if done == nil {
		return
	}
	go func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for i := 0; i < 200; i++ {
			select {
			case <-done:
				return
			case <-tk.C:
				if s.inResume.Load() {
					s.t.Interrupt()
				}
			}
		}
	}()
}

// waitResume waits for a resume goroutine that may still be finishing.
func (s *session) waitResume() {
	if s.resumeDone != nil {
		<-s.resumeDone
		s.resumeDone = nil
	}
}

func (s *session) close() {
	s.waitResume()
	s.state.Store(int32(stateClosed))
	if s.f.console != nil {
		s.f.console.SetConsole(nil)
	}
	for i, f := range s.files {
		if f != nil {
			f.Close()
			s.files[i] = nil
		}
	}
	if !s.killed && s.f.detach != nil {
		if err := s.f.detach.Detach(); err != nil {
			s.log.Warn("target detach failed", "err", err)
		}
	}
	s.conn.Close()
}

// Error mapping. Handlers return nil after sending their reply, or an
// error; finish is the one place that turns errors into wire replies.

var (
	// errUnsupported answers the empty reply: "I do not know this".
	errUnsupported = errors.New("unsupported packet")
	// errEndSession ends the session after any reply was sent.
	errEndSession = errors.New("session ended by the client")
)

// Exx codes: GDB's errno values, which clients print.
const (
	ePERM   = 0x01
	eNOENT  = 0x02
	eBADF   = 0x09
	eACCES  = 0x0d
	eFAULT  = 0x0e
	eINVAL  = 0x16
	eNOSPC  = 0x1c
	eNOTSUP = 0x5f
)

// replyError asks for an `Exx` reply.
type replyError struct {
	code byte
	err  error
}

func (e *replyError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("E%02x", e.code)
	}
	return e.err.Error()
}
func (e *replyError) Unwrap() error { return e.err }

func replyErr(code byte, err error) error { return &replyError{code: code, err: err} }

// Preallocated errors for the hot handlers, so bad input costs nothing.
var (
	errSyntax        = replyErr(eINVAL, errors.New("malformed packet"))
	errBadReg        = replyErr(eINVAL, errors.New("no such register"))
	errNoMemory      = replyErr(eFAULT, errors.New("memory not accessible"))
	errNoThread      = replyErr(eINVAL, errors.New("no such thread"))
	errTooManyBreaks = replyErr(eNOSPC, errors.New("too many breakpoints"))
)

// fileError asks for a vFile error reply `F-1,errno`.
type fileError struct {
	errno int
	err   error
}

func (e *fileError) Error() string { return fmt.Sprintf("vFile errno %d: %v", e.errno, e.err) }

// finish sends the reply an error stands for. It reports false when the
// session must end.
func (s *session) finish(err error) bool {
	if err == nil {
		return true
	}
	var wire error
	switch {
	case errors.Is(err, errEndSession):
		s.endReason = "client ended the session"
		return false
	case errors.Is(err, errUnsupported):
		wire = s.c.sendString("")
	default:
		fe, re := asWireError(err)
		switch {
		case fe != nil:
			s.c.wmu.Lock()
			s.c.begin()
			s.c.putString("F-1,")
			s.c.putUint(uint64(fe.errno))
			wire = s.c.send()
			s.c.wmu.Unlock()
		default:
			code := byte(ePERM)
			if re != nil {
				code = re.code
			}
			if s.srv.logPackets || re == nil {
				s.log.Debug("request failed", "err", err)
			}
			s.c.wmu.Lock()
			s.c.begin()
			s.c.putByte('E')
			s.c.putHex8(code)
			if s.errorStrings {
				// LLDB's QEnableErrorStrings form: Exx;hex(message).
				s.c.putByte(';')
				s.c.putHexString(err.Error())
			}
			wire = s.c.send()
			s.c.wmu.Unlock()
		}
	}
	if wire != nil {
		s.endReason = wire.Error()
		return false
	}
	return true
}

// asWireError finds our reply or file error in err's chain (without
// errors.As, whose target pointer would cost an allocation per error).
func asWireError(err error) (*fileError, *replyError) {
	for i := 0; i < 16 && err != nil; i++ {
		switch e := err.(type) {
		case *fileError:
			return e, nil
		case *replyError:
			return nil, e
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return nil, nil
		}
		err = u.Unwrap()
	}
	return nil, nil
}

// consoleWriter is given to a Consoler: guest output while the target
// runs, and monitor output, become `O` packets.
type consoleWriter struct {
	s       *session
	monitor bool // set while qRcmd runs
	mu      sync.Mutex
	pending []byte // output written while stopped, sent at the next resume
	// Monitor output is gathered into packets of up to monitorChunk
	// bytes (a command that prints a line at a time would otherwise send
	// a packet a line), sent when full, when the oldest byte waited
	// monitorDelay, and when the command ends.
	mbuf   []byte
	mfirst time.Time
}

const (
	maxPendingConsole = 64 << 10
	monitorChunk      = 64 << 10
	monitorDelay      = 20 * time.Millisecond
)

func (w *consoleWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.s.getState()
	if st == stateClosed {
		return len(p), nil
	}
	if st != stateRunning && !w.monitor {
		room := maxPendingConsole - len(w.pending)
		if room > 0 {
			w.pending = append(w.pending, p[:min(room, len(p))]...)
		}
		return len(p), nil
	}
	if w.monitor {
		if len(w.mbuf) == 0 {
			w.mfirst = time.Now()
		}
		if len(w.mbuf)+len(p) <= monitorChunk {
			w.mbuf = append(w.mbuf, p...)
			if time.Since(w.mfirst) < monitorDelay {
				return len(p), nil
			}
			p = nil
		}
		if err := w.flushMonitor(); err != nil {
			return 0, err
		}
	}
	if len(p) > 0 {
		if err := w.s.sendO(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flushMonitor sends the gathered monitor output. Caller holds mu.
func (w *consoleWriter) flushMonitor() error {
	if len(w.mbuf) == 0 {
		return nil
	}
	err := w.s.sendO(w.mbuf)
	w.mbuf = w.mbuf[:0]
	return err
}

// flushPending sends console output kept while stopped; called as the
// target starts running.
func (w *consoleWriter) flushPending() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		w.s.sendO(w.pending)
		w.pending = w.pending[:0]
	}
}

// sendO sends p as `O` packets that fit the packet size.
func (s *session) sendO(p []byte) error {
	chunk := (s.c.maxSize - 1) / 2
	for len(p) > 0 {
		n := min(chunk, len(p))
		s.c.wmu.Lock()
		s.c.begin()
		s.c.putByte('O')
		s.c.putHexRuns(p[:n], false)
		err := s.c.send()
		s.c.wmu.Unlock()
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}
