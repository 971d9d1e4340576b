package guest

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// KERNEL32.dll's code page exports: their handlers, listed by kernel32Exports
// in api_kernel32.go.

// k32_GetACP implements GetACP.
func k32_GetACP(c *call) error { return c.ret(1252) }

// k32_GetOEMCP implements GetOEMCP.
func k32_GetOEMCP(c *call) error { return c.ret(437) }

// k32_GetCPInfo implements GetCPInfo.
func k32_GetCPInfo(c *call) error {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, 1)
	b[4] = '?'
	c.wbytes(c.arg(1), b)
	return c.ret(1)
}

func multiByteToWideChar(c *call) error {
	cp, src, srcLen, dst, dstLen := uint32(c.arg(0)), c.arg(2), int32(c.arg(3)), c.arg(4), int32(c.arg(5))
	var b []byte
	if srcLen < 0 {
		s, err := c.p.mem.ReadCString(src, 0)
		if err != nil {
			return err
		}
		b = append([]byte(s), 0)
	} else {
		b = c.rbytes(src, uint64(srcLen))
	}
	var runes []rune
	if cp == 65001 {
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			runes = append(runes, r)
			b = b[n:]
		}
	} else {
		for _, x := range b {
			runes = append(runes, rune(x))
		}
	}
	u := utf16.Encode(runes)
	if dstLen == 0 {
		return c.ret(uint64(len(u)))
	}
	if int(dstLen) < len(u) {
		return c.fail(errorInsufficientBuf)
	}
	out := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(out[2*i:], v)
	}
	c.wbytes(dst, out)
	return c.ret(uint64(len(u)))
}

func wideCharToMultiByte(c *call) error {
	cp, src, srcLen, dst, dstLen := uint32(c.arg(0)), c.arg(2), int32(c.arg(3)), c.arg(4), int32(c.arg(5))
	var s string
	var err error
	if srcLen < 0 {
		s, err = c.p.mem.ReadWString(src, 0)
		s += "\x00"
	} else {
		s, err = c.p.mem.ReadWStringN(src, int(srcLen))
	}
	if err != nil {
		return err
	}
	var out []byte
	if cp == 65001 {
		out = []byte(s)
	} else {
		for _, r := range s {
			if r > 0xFF {
				r = '?'
			}
			out = append(out, byte(r))
		}
	}
	if dstLen == 0 {
		return c.ret(uint64(len(out)))
	}
	if int(dstLen) < len(out) {
		return c.fail(errorInsufficientBuf)
	}
	c.wbytes(dst, out)
	return c.ret(uint64(len(out)))
}
