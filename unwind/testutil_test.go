package unwind

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"encoding/binary"
	"github.com/rspstub/rspstub/internal/arch"
)

// fakeMem is the kit's fake guest memory: disjoint regions, reads stop
// at holes (Map adds a region, Unmap punches a hole).
type fakeMem = testkit.Memory

// Synthetic image layout used by the table tests.
const (
	imgBase   = 0x140000000
	imgSize   = 0x8000
	textRVA   = 0x1000 // .text: 0x1000-0x3000, executable
	xdataRVA  = 0x3000 // .xdata: 0x3000-0x5000
	pdataRVA  = 0x5000 // .pdata: 0x5000-0x6000
	stackBase = 0x100000
	stackSize = 0x40000
)

// imageBuilder assembles a minimal PE32+ image in a byte slice.
type imageBuilder struct {
	b     []byte
	pdata []RuntimeFunction
}

func newImageBuilder() *imageBuilder {
	ib := &imageBuilder{b: make([]byte, imgSize)}
	// Fill .text with int3 so stray code never looks like an epilog.
	for i := textRVA; i < xdataRVA; i++ {
		ib.b[i] = 0xcc
	}
	return ib
}

func (ib *imageBuilder) put(rva uint32, p []byte) { copy(ib.b[rva:], p) }

func (ib *imageBuilder) fn(begin, end, unwind uint32) {
	ib.pdata = append(ib.pdata, RuntimeFunction{begin, end, unwind})
}

// bytes writes headers and .pdata and returns the image.
func (ib *imageBuilder) bytes() []byte {
	b := ib.b
	le := binary.LittleEndian
	b[0], b[1] = 'M', 'Z'
	le.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	fh := b[0x44:]
	le.PutUint16(fh[0:], 0x8664)
	le.PutUint16(fh[2:], 3)
	le.PutUint16(fh[16:], 240)
	opt := b[0x58:]
	le.PutUint16(opt[0:], 0x20b)
	le.PutUint64(opt[24:], imgBase)
	le.PutUint32(opt[56:], imgSize)
	le.PutUint32(opt[108:], 16)
	le.PutUint32(opt[112+3*8:], pdataRVA)
	le.PutUint32(opt[112+3*8+4:], uint32(12*len(ib.pdata)))
	sh := b[0x58+240:]
	sect := func(i int, name string, rva, size, ch uint32) {
		s := sh[40*i:]
		copy(s, name)
		le.PutUint32(s[8:], size)
		le.PutUint32(s[12:], rva)
		le.PutUint32(s[36:], ch)
	}
	sect(0, ".text", textRVA, 0x2000, 0x60000020)
	sect(1, ".xdata", xdataRVA, 0x2000, 0x40000040)
	sect(2, ".pdata", pdataRVA, 0x1000, 0x40000040)
	for i, f := range ib.pdata {
		e := b[pdataRVA+12*i:]
		le.PutUint32(e[0:], f.BeginAddress)
		le.PutUint32(e[4:], f.EndAddress)
		le.PutUint32(e[8:], f.UnwindData)
	}
	return b
}

// stack is a little-endian stack image at stackBase.
type stack []byte

func newStack() stack { return make(stack, stackSize) }

func (s stack) put(addr, v uint64) { binary.LittleEndian.PutUint64(s[addr-stackBase:], v) }

// world is an image plus a stack in one fakeMem.
func world(ib *imageBuilder, st stack) (*fakeMem, *Unwinder) {
	m := &fakeMem{}
	m.Map(imgBase, ib.bytes())
	m.Map(stackBase, st)
	return m, New(m, []Module{{Name: "test.exe", Base: imgBase, Size: imgSize}})
}

// ctxWith returns a frame-0 context with every GPR known.
func ctxWith(rip, rsp uint64, regs map[int]uint64) Context {
	var c Context
	for i := range 16 {
		c.Set(archReg(i), 0xdead0000+uint64(i))
	}
	for r, v := range regs {
		c.Set(archReg(r), v)
	}
	c.Set(archReg(4), rsp)
	c.RIP, c.RIPKnown = rip, true
	return c
}

func archReg(i int) arch.Reg { return arch.Reg(i) }
