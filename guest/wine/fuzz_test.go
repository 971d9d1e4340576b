package wine

import (
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/stretchr/testify/require"
)

// A hostile guest: every implemented system call with arguments taken
// from the fuzzer's bytes — handles (real, pseudo, closed, garbage),
// pointers (into a scratch page filled with the fuzzer's bytes, into
// read-only and unmapped memory, kernel and non-canonical addresses) and
// plain numbers. The kernel must answer each with a status: no panic
// (Syscall turns one into EventError "internal error"), no hang, no
// emulator failure.

type fuzzGuest struct {
	m       *unicorn.Machine
	p       *Process
	scratch uint64 // a read-write page the fuzzer fills
	ro      uint64 // a read-only page
}

func newFuzzGuest(t testing.TB, exe, root string) *fuzzGuest {
	m, err := unicorn.New()
	require.NoError(t, err)
	// Standard input and output are a console, so its requests are
	// reachable through the small handles; standard error a pipe.
	p, err := Load(m, Config{Program: exe, Root: root, StdioKinds: [3]string{"tty", "tty", "pipe"},
		Stdin: strings.NewReader("a line of input\n"), Stdout: io.Discard, Stderr: io.Discard})
	require.NoError(t, err)
	scratch, err := p.allocate(0, 0x2000, process.PAGE_READWRITE, process.MEM_PRIVATE, false, "fuzz scratch")
	require.NoError(t, err)
	ro, err := p.allocate(0, process.PageSize, process.PAGE_READONLY, process.MEM_PRIVATE, false, "fuzz read-only")
	require.NoError(t, err)
	return &fuzzGuest{m: m, p: p, scratch: scratch.base, ro: ro.base}
}

func (g *fuzzGuest) close() {
	g.p.Close()
	g.m.Close()
}

// fuzzSyscalls lists the table's entries in a fixed order.
var fuzzSyscalls = func() []string {
	var names []string
	for _, e := range syscallTable {
		names = append(names, e.name)
	}
	return names
}()

// numberOf finds the thunk number of a system call.
func (g *fuzzGuest) numberOf(name string) (uint32, bool) {
	for n, s := range g.p.inst.syscalls {
		if s == name {
			return n, true
		}
	}
	return 0, false
}

// value turns 9 fuzz bytes into an argument.
func (g *fuzzGuest) value(b []byte) uint64 {
	v := binary.LittleEndian.Uint64(b[1:])
	switch b[0] % 12 {
	case 0:
		return g.scratch + v%0x2000 // a pointer into the scratch pages
	case 1:
		return g.scratch + 0x1ff8 // at the end: a read runs off
	case 2:
		return g.ro + v%process.PageSize
	case 3:
		return 4 * (v % 16) // small handles
	case 4:
		return ^uint64(0) - v%6 // pseudo handles
	case 5:
		return 0
	case 6:
		return 0xFFFF_8000_0000_0000 + v%0x10000 // kernel space
	case 7:
		return 0x8000_0000_0000_0000 | v // non-canonical
	case 8:
		return v % 0x10000 // small numbers, the null page
	case 9:
		return uint64(uint32(v)) // ULONGs
	case 10:
		return uint64(condrvCode(uint32(v%64), uint32(v>>6%3))) // console requests
	}
	return v
}

func FuzzSyscall(f *testing.F) {
	if !Installed() {
		f.Skip("Wine 8's PE DLLs are not installed")
	}
	exe := testkit.BuildPE(f, "guest/wine/testdata/hello.c", testkit.MinGW, "-O1")
	root := f.TempDir()
	seed := make([]byte, 2+0x200+11*9)
	for i := range fuzzSyscalls {
		s := append([]byte{}, seed...)
		s[0], s[1] = byte(i), byte(i>>8)
		f.Add(s)
	}
	var g *fuzzGuest
	f.Fuzz(func(t *testing.T, data []byte) {
		if n := 2 + 0x200 + 11*9; len(data) < n {
			data = append(data, make([]byte, n-len(data))...)
		}
		if g == nil || g.p.exited || g.p.cur == nil {
			if g != nil {
				g.close()
			}
			g = newFuzzGuest(t, exe, root)
		}
		name := fuzzSyscalls[int(binary.LittleEndian.Uint16(data))%len(fuzzSyscalls)]
		// Calls that end the guest or ask for a child process only
		// restart the fuzz guest; they are fuzzed too.
		num, ok := g.numberOf(name)
		if !ok {
			t.Skipf("%s has no thunk in this ntdll", name)
		}
		scratch := data[2 : 2+0x200]
		for i := 0; i < 0x2000/0x200; i++ {
			_, err := g.m.WriteMemory(g.scratch+uint64(i)*0x200, scratch)
			require.NoError(t, err)
		}
		args := data[2+0x200:]
		var c arch.Context
		require.NoError(t, g.m.ReadContext(&c))
		c.GPR[arch.RAX] = uint64(num)
		c.GPR[arch.R10] = g.value(args[0:9])
		c.GPR[arch.RDX] = g.value(args[9:18])
		c.GPR[arch.R8] = g.value(args[18:27])
		c.GPR[arch.R9] = g.value(args[27:36])
		// Stack arguments 5..11 at RSP+0x28.
		rsp := (g.p.cur.stackBase - 0x1000) &^ 15
		c.GPR[arch.RSP] = rsp
		for i := 0; i < 7; i++ {
			var v [8]byte
			binary.LittleEndian.PutUint64(v[:], g.value(args[36+9*i:45+9*i]))
			_, err := g.m.WriteMemory(rsp+0x28+8*uint64(i), v[:])
			require.NoError(t, err)
		}
		require.NoError(t, g.m.WriteContext(&c))
		ev, err := g.p.Syscall()
		require.NoError(t, err, "%s", name)
		if ev.Kind == EventError {
			if strings.Contains(ev.Description, "internal error") {
				t.Fatalf("%s: %s", name, ev.Description)
			}
			t.Fatalf("%s: the kernel failed: %s", name, ev.Description)
		}
		if ev.Kind == EventDeadlock {
			g.close()
			g = nil
		}
	})
}
