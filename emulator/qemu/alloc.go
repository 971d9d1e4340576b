package qemu

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rspstub/rspstub/rsp"
)

// Guest memory for LLDB's expression evaluator (_M/_m) in qemu-user.
// Without _M, LLDB calls mmap in the program itself, then writes its JIT
// code into the read-execute mapping it asked for; qemu-user's gdbstub
// refuses writes to pages that are not writable (gdbserver's ptrace
// does not), and the call jumps into an empty page. Here the stub runs
// the system call itself: the thread's registers are saved, rip is set
// on one of the program's own `syscall` instructions with mmap's (or
// munmap's) arguments, one step runs it, and the registers are put back.
// The mapping is always read-write-execute, so the debugger's writes to
// it succeed whatever it asked for (see unprotect for qemu-user's own
// protection of translated code).

// Linux x86-64 system call numbers and mmap arguments.
const (
	sysMmap       = 9
	sysMunmap     = 11
	sysMprotect   = 10
	protRWX       = 7
	mapPrivAnon   = 0x22 // MAP_PRIVATE | MAP_ANONYMOUS
	maxGuestAlloc = 1 << 30
)

// AllocateMemory implements rsp.MemoryAllocator in user mode.
func (t *Target) AllocateMemory(size uint64, perm rsp.Perm) (uint64, error) {
	t.lock()
	defer t.mu.Unlock()
	if t.mode != ModeUser {
		return 0, errors.New("qemu: guest memory is allocated only in qemu-user")
	}
	if size == 0 || size > maxGuestAlloc {
		return 0, fmt.Errorf("qemu: allocate %#x bytes: bad size", size)
	}
	size = (size + 0xfff) &^ 0xfff
	addr, err := t.guestSyscall(sysMmap, 0, size, protRWX, mapPrivAnon, ^uint64(0), 0)
	if err != nil {
		return 0, err
	}
	if t.allocs == nil {
		t.allocs = map[uint64]uint64{}
	}
	t.allocs[addr] = size
	return addr, nil
}

// FreeMemory implements rsp.MemoryAllocator in user mode.
func (t *Target) FreeMemory(addr uint64) error {
	t.lock()
	defer t.mu.Unlock()
	size, ok := t.allocs[addr]
	if !ok {
		return fmt.Errorf("qemu: free %#x: not allocated by the debugger", addr)
	}
	if _, err := t.guestSyscall(sysMunmap, addr, size, 0, 0, 0, 0); err != nil {
		return err
	}
	delete(t.allocs, addr)
	return nil
}

// guestSyscall runs one system call in the stopped program's current
// thread and returns its result; a -errno result is an error.
func (t *Target) guestSyscall(nr, a1, a2, a3, a4, a5, a6 uint64) (uint64, error) {
	if t.gone.Load() {
		return 0, ErrGone
	}
	if t.sysSite == 0 || t.sysSiteSig != t.libSig {
		d := t.discover(0, false)
		for a := range t.scanSyscalls(d.mods, 1) {
			t.sysSite = a
		}
		t.sysSiteSig = t.libSig
	}
	if t.sysSite == 0 {
		return 0, errors.New("qemu: no syscall instruction found in the program's modules")
	}
	tid := t.last.Thread
	saved := make([]byte, t.desc.Size())
	if err := t.readRegisters(tid, saved); err != nil {
		return 0, err
	}
	last := t.last
	defer func() { t.last = last }()
	set := func(regnum int, v uint64) error {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		return t.writeRegister(tid, regnum, b[:])
	}
	for _, r := range []struct {
		n int
		v uint64
	}{{rsp.AMD64RAX, nr}, {rsp.AMD64RDI, a1}, {rsp.AMD64RSI, a2}, {rsp.AMD64RDX, a3},
		{rsp.AMD64R10, a4}, {rsp.AMD64R8, a5}, {rsp.AMD64R9, a6}, {rsp.AMD64RIP, t.sysSite}} {
		if err := set(r.n, r.v); err != nil {
			t.writeRegisters(tid, saved)
			return 0, err
		}
	}
	st, err := t.stepOver(tid)
	var ret uint64
	if pc, perr := t.reg64(tid, rsp.AMD64RIP); err == nil && perr == nil && st.Kind == rsp.StopSignal && st.Signal == rsp.SIGTRAP && pc == t.sysSite+2 {
		ret, err = t.reg64(tid, rsp.AMD64RAX)
	} else if err == nil {
		err = fmt.Errorf("qemu: the system call stopped the program: %+v", st)
	}
	if werr := t.writeRegisters(tid, saved); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return 0, err
	}
	if int64(ret) < 0 && int64(ret) > -4096 {
		return 0, fmt.Errorf("qemu: system call %d failed: errno %d", nr, -int64(ret))
	}
	return ret, nil
}

// unprotect makes [addr, addr+size) writable again when it lies in
// memory the debugger allocated, and reports whether it did. qemu-user
// 7.2 write-protects a page once it has translated code from it (to see
// the program modify its code) and then refuses the gdbstub's writes to
// it: LLDB's second expression, written where the first one ran, failed.
// An mprotect run in the guest gives the page its write permission back,
// and QEMU drops the page's translations as it does.
func (t *Target) unprotect(addr, size uint64) bool {
	for base, n := range t.allocs {
		if addr >= base && addr+size <= base+n {
			lo, hi := addr&^0xfff, (addr+size+0xfff)&^0xfff
			_, err := t.guestSyscall(sysMprotect, lo, hi-lo, protRWX, 0, 0, 0)
			return err == nil
		}
	}
	return false
}
