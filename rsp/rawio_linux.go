package rsp

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Raw socket I/O. Every read and write through net.Conn enters the
// runtime's system-call bookkeeping, and when the process was idle (as
// a stub is between two packets) that wakes the runtime's monitor
// thread, which then polls for a while and sleeps again: measured with
// perf on `rspstub qemu` under GDB's stepi, a third of the process's
// thread switches were the monitor's. A socket is non-blocking, so its
// read and write return at once: rawIO makes them with RawSyscall,
// which skips that bookkeeping, and parks on the network poller through
// syscall.RawConn only when the socket has nothing to read (or no room
// to write). Deadlines and Close work as on the net.Conn itself.
type rawIO struct {
	conn net.Conn // for the addresses in errors
	rc   syscall.RawConn

	rbuf   []byte
	rn     int
	rerrno syscall.Errno
	readFn func(uintptr) bool // r.read, bound once: a method value allocates

	wbuf    []byte
	wn      int
	werrno  syscall.Errno
	writeFn func(uintptr) bool
}

// fastIO returns the reader-writer the codec should use for conn: raw
// system calls for a TCP or unix socket (or a wrapper that hands out
// its socket with SyscallConn), conn itself for anything else.
func fastIO(conn net.Conn) io.ReadWriter {
	sc, ok := conn.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return conn
	}
	rc, err := sc.SyscallConn()
	if err != nil || rc == nil {
		return conn
	}
	r := &rawIO{conn: conn, rc: rc}
	r.readFn, r.writeFn = r.read, r.write
	return r
}

func (r *rawIO) read(fd uintptr) bool {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
	if e == syscall.EAGAIN || e == syscall.EINTR {
		return false // wait until readable, then try again
	}
	r.rn, r.rerrno = int(n), e
	return true
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rbuf, r.rn, r.rerrno = p, 0, 0
	err := r.rc.Read(r.readFn)
	r.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case r.rerrno != 0:
		return 0, r.opError("read", r.rerrno)
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

func (r *rawIO) write(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.wbuf[r.wn])), uintptr(len(r.wbuf)-r.wn))
		switch e {
		case 0:
			r.wn += int(n)
		case syscall.EAGAIN, syscall.EINTR:
			return false // wait until writable
		default:
			r.werrno = e
			return true
		}
	}
	return true
}

func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.wbuf, r.wn, r.werrno = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n := r.wn
	r.wbuf = nil
	if err == nil && r.werrno != 0 {
		err = r.opError("write", r.werrno)
	}
	return n, err
}

// opError wraps a failed call as net.Conn's own Read and Write do.
func (r *rawIO) opError(op string, e syscall.Errno) error {
	oe := &net.OpError{Op: op, Source: r.conn.LocalAddr(), Addr: r.conn.RemoteAddr(), Err: os.NewSyscallError(op, e)}
	if oe.Source != nil {
		oe.Net = oe.Source.Network()
	}
	return oe
}
