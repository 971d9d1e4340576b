package check

import (
	"encoding/binary"
	"fmt"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// Symbolic registers and memory. Before a step every integer register r
// holds the centre of its own region of the address space,
//
//	region(r) = [(r+1)<<48, (r+2)<<48), centre(r) = (r+1)<<48 | 1<<47,
//
// so any value the step computes from it decodes back to "r+offset". The
// stack is readable everywhere in those regions and each read returns the
// address it was read from with bit 63 set (a tag), so a restored register
// decodes to "[r+offset]", the slot it came from. Addresses below 1<<48
// are the image (read from the file) or unreadable.

const (
	tagBit     = uint64(1) << 63
	regionBits = 48
	regionLow  = uint64(1) << regionBits
)

func centre(r arch.Reg) uint64 { return uint64(r+1)<<regionBits | 1<<(regionBits-1) }

// Sym is a value an unwind step computed, in terms of the registers it
// started from: Base+Off, or the contents of memory at Base+Off when
// Deref is set. Base -1 is an absolute value.
type Sym struct {
	Base  int // arch.Reg, or -1
	Off   int64
	Deref bool
}

func decodeSym(v uint64) Sym {
	deref := v&tagBit != 0
	v &^= tagBit
	s := Sym{Base: -1, Off: int64(v), Deref: deref}
	if r := v>>regionBits - 1; v >= regionLow && r < 16 {
		s = Sym{Base: int(r), Off: int64(v - centre(arch.Reg(r))), Deref: deref}
	}
	return s
}

func (s Sym) String() string {
	var t string
	switch {
	case s.Base < 0:
		t = fmt.Sprintf("%#x", uint64(s.Off))
	case s.Off < 0:
		t = fmt.Sprintf("%v-%#x", arch.Reg(s.Base), -s.Off)
	case s.Off > 0:
		t = fmt.Sprintf("%v+%#x", arch.Reg(s.Base), s.Off)
	default:
		t = arch.Reg(s.Base).String()
	}
	if s.Deref {
		return "[" + t + "]"
	}
	return t
}

// symMem is the memory both steps read: the image at its preferred base,
// tagged slots in the register regions, nothing elsewhere.
type symMem struct {
	base uint64
	img  []byte
}

func (m *symMem) ReadMemory(addr uint64, p []byte) (int, error) {
	if addr >= m.base && addr-m.base < uint64(len(m.img)) {
		return copy(p, m.img[addr-m.base:]), nil
	}
	if addr&^tagBit < regionLow {
		return 0, nil
	}
	var b [8]byte
	n := 0
	for n+8 <= len(p) {
		binary.LittleEndian.PutUint64(p[n:], (addr+uint64(n))|tagBit)
		n += 8
	}
	if n < len(p) {
		binary.LittleEndian.PutUint64(b[:], (addr+uint64(n))|tagBit)
		n += copy(p[n:], b[:])
	}
	return n, nil
}

// dwarfOf maps arch register numbers (RAX..R15) to DWARF numbers.
var dwarfOf = [16]uint64{
	arch.RAX: dwarf.RAX, arch.RCX: dwarf.RCX, arch.RDX: dwarf.RDX, arch.RBX: dwarf.RBX,
	arch.RSP: dwarf.RSP, arch.RBP: dwarf.RBP, arch.RSI: dwarf.RSI, arch.RDI: dwarf.RDI,
	arch.R8: dwarf.R8, arch.R9: dwarf.R9, arch.R10: dwarf.R10, arch.R11: dwarf.R11,
	arch.R12: dwarf.R12, arch.R13: dwarf.R13, arch.R14: dwarf.R14, arch.R15: dwarf.R15,
}

// xmmSentinel is the starting value of XMMi (low and high halves): never a
// region address, so a restored XMM register is told apart by its tag.
func xmmSentinel(i int) uint64 { return 0x0000_0a0a_0000_0000 | uint64(i) }
