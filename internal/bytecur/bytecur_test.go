package bytecur

import (
	"errors"
	"math"
	"testing"
)

func TestFields(t *testing.T) {
	c := Cursor{B: []byte{
		0x01,       // U8 1
		0x02, 0x01, // U16 0x102
		0x04, 0x03, 0x02, 0x01, // U32 0x1020304
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // U64 0x102030405060708
		0xe5, 0x8e, 0x26, // ULEB 624485 (DWARF 5 figure 7.2.2)
		0xc0, 0xbb, 0x78, // SLEB -123456
		0x7f,        // SLEB -1
		'a', 'b', 0, // CString "ab"
		0xaa, 0xbb, // Bytes(2)
		0xcc, // Skip(1)
	}}
	if v := c.U8(); v != 1 {
		t.Errorf("U8 %#x", v)
	}
	if v := c.U16(); v != 0x102 {
		t.Errorf("U16 %#x", v)
	}
	if v := c.U32(); v != 0x1020304 {
		t.Errorf("U32 %#x", v)
	}
	if v := c.U64(); v != 0x102030405060708 {
		t.Errorf("U64 %#x", v)
	}
	if v := c.ULEB(); v != 624485 {
		t.Errorf("ULEB %d", v)
	}
	if v := c.SLEB(); v != -123456 {
		t.Errorf("SLEB %d", v)
	}
	if v := c.SLEB(); v != -1 {
		t.Errorf("SLEB %d", v)
	}
	if v := c.CString(); v != "ab" {
		t.Errorf("CString %q", v)
	}
	b := c.Bytes(2)
	if string(b) != "\xaa\xbb" || cap(b) != 2 {
		t.Errorf("Bytes %x cap %d", b, cap(b))
	}
	c.Skip(1)
	if c.Err != nil || c.Left() != 0 {
		t.Errorf("err %v, %d left", c.Err, c.Left())
	}
}

// TestSticky: the first failure sticks; later reads return zero and move
// nothing.
func TestSticky(t *testing.T) {
	for name, read := range map[string]func(c *Cursor){
		"U16":     func(c *Cursor) { c.U16() },
		"U32":     func(c *Cursor) { c.U32() },
		"U64":     func(c *Cursor) { c.U64() },
		"ULEB":    func(c *Cursor) { c.ULEB() },
		"SLEB":    func(c *Cursor) { c.SLEB() },
		"CString": func(c *Cursor) { c.CString() },
		"Bytes":   func(c *Cursor) { c.Bytes(3) },
		"Skip":    func(c *Cursor) { c.Skip(3) },
		"Need<0":  func(c *Cursor) { c.Need(-1) },
		"Bytes>":  func(c *Cursor) { c.Bytes(math.MaxUint64) },
	} {
		c := Cursor{B: []byte{0x01, 0x80}} // U8 1, then an unterminated LEB or short field
		c.U8()
		read(&c)
		if !errors.Is(c.Err, ErrTruncated) {
			t.Errorf("%s: err %v", name, c.Err)
			continue
		}
		off := c.Off
		if c.U8() != 0 || c.U64() != 0 || c.ULEB() != 0 || c.CString() != "" || c.Bytes(0) != nil || c.Off != off {
			t.Errorf("%s: reads after the failure moved or returned data", name)
		}
		c.Fail(errors.New("later"))
		if !errors.Is(c.Err, ErrTruncated) {
			t.Errorf("%s: Fail replaced the first error", name)
		}
	}
}

// TestLEBLimits: bits past the 64th are dropped; a long encoding still
// has to end inside the bytes.
func TestLEBLimits(t *testing.T) {
	long := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	c := Cursor{B: long}
	if v := c.ULEB(); v != math.MaxUint64 || c.Err != nil || c.Off != len(long) {
		t.Errorf("ULEB %#x, %v, off %d", v, c.Err, c.Off)
	}
	c = Cursor{B: []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}}
	if v := c.SLEB(); v != math.MinInt64 || c.Err != nil {
		t.Errorf("SLEB %d, %v", v, c.Err)
	}
}

// mem is memory with [base, base+len(b)) readable; count overrides the
// count it reports (a faulty Memory).
type mem struct {
	base  uint64
	b     []byte
	count int
	err   error
	last  int // length of the last request
}

func (m *mem) ReadMemory(addr uint64, p []byte) (int, error) {
	m.last = len(p)
	if m.count != 0 {
		return m.count, m.err
	}
	if addr < m.base || addr-m.base >= uint64(len(m.b)) {
		return 0, m.err
	}
	return copy(p, m.b[addr-m.base:]), m.err
}

func TestRead(t *testing.T) {
	m := &mem{base: 0x1000, b: []byte{1, 2, 3, 4}}
	var p [8]byte
	if n, _ := Read(m, 0x1002, p[:]); n != 2 || p[0] != 3 {
		t.Errorf("prefix: %d %x", n, p)
	}
	if n, _ := Read(m, 0x1002, nil); n != 0 || m.last != 8 {
		t.Errorf("empty read: %d, and it called the memory (last %d)", n, m.last)
	}
	// A read that would wrap the address space asks only up to the top.
	Read(m, math.MaxUint64-2, p[:])
	if m.last != 3 {
		t.Errorf("wrapping read asked for %d bytes", m.last)
	}
	// Counts outside [0, len(p)] are clamped.
	for _, c := range []int{-5, 100} {
		fm := &mem{count: c}
		if n, _ := Read(fm, 0, p[:]); n < 0 || n > len(p) {
			t.Errorf("count %d gave %d", c, n)
		}
	}
	if err := ReadFull(m, "x", 0x1000, p[:4]); err != nil {
		t.Error(err)
	}
	cause := errors.New("unmapped")
	m.err = cause
	err := ReadFull(m, "saved rbx", 0x1002, p[:])
	var re *ReadError
	if !errors.As(err, &re) || re.What != "saved rbx" || re.Addr != 0x1002 || re.Want != 8 || re.Got != 2 || !errors.Is(err, cause) {
		t.Errorf("ReadFull: %v", err)
	}
	if want := "read saved rbx at 0x1002: 2 of 8 bytes readable: unmapped"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func FuzzCursor(f *testing.F) {
	f.Add([]byte{0x01, 0xe5, 0x8e, 0x26, 'a', 0, 0xff}, uint8(7))
	f.Add([]byte{0x80, 0x80}, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, ops uint8) {
		c := Cursor{B: b}
		for i := 0; i < 64; i++ {
			switch (int(ops) + i) % 9 {
			case 0:
				c.U8()
			case 1:
				c.U16()
			case 2:
				c.U32()
			case 3:
				c.U64()
			case 4:
				c.ULEB()
			case 5:
				c.SLEB()
			case 6:
				c.CString()
			case 7:
				c.Bytes(uint64(ops))
			case 8:
				c.Skip(int(ops) - 100)
			}
			if c.Off < 0 || c.Off > len(b) {
				t.Fatalf("offset %d outside [0, %d]", c.Off, len(b))
			}
		}
	})
}
