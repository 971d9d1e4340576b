package rsp

import "encoding/binary"

// Word-at-a-time arithmetic on packet payloads (SIMD within a register):
// checksums eight bytes a step, and the run-length encoder's search for
// runs (compressRuns). Escaping and unescaping search with the runtime's
// vector loops instead (scan.go).

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
	odd8 = 0x00ff00ff00ff00ff
)

// zeroByte is non-zero when some byte of w is zero (exact as a test; the
// bits it sets above the first zero byte are not meaningful).
func zeroByte(w uint64) uint64 { return (w - lsb8) &^ w & msb8 }

func fold(acc uint64) uint64 {
	return acc&0xffff + acc>>16&0xffff + acc>>32&0xffff + acc>>48
}

// sumBytes is the sum of p modulo 256.
func sumBytes(p []byte) byte {
	var sum uint64
	i := 0
	for i+1024 <= len(p) {
		// 128 words in four accumulators of four 16-bit lanes: each lane
		// gets at most 32 x 510.
		var a, b, c, d uint64
		for end := i + 1024; i < end; i += 32 {
			q := p[i : i+32]
			w, v := binary.LittleEndian.Uint64(q), binary.LittleEndian.Uint64(q[8:])
			x, y := binary.LittleEndian.Uint64(q[16:]), binary.LittleEndian.Uint64(q[24:])
			a += w&odd8 + (w>>8)&odd8
			b += v&odd8 + (v>>8)&odd8
			c += x&odd8 + (x>>8)&odd8
			d += y&odd8 + (y>>8)&odd8
		}
		sum += fold(a) + fold(b) + fold(c) + fold(d)
	}
	for i+16 <= len(p) {
		w, v := binary.LittleEndian.Uint64(p[i:]), binary.LittleEndian.Uint64(p[i+8:])
		sum += fold(w&odd8+(w>>8)&odd8) + fold(v&odd8+(v>>8)&odd8)
		i += 16
	}
	for ; i < len(p); i++ {
		sum += uint64(p[i])
	}
	return byte(sum)
}
