package rsp

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Word-at-a-time scanning of packet payloads (SIMD within a register):
// binary transfers (`x`, `X`, vFile) spend their time finding the four
// bytes that need escaping and summing the rest, eight bytes per step.

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
	odd8 = 0x00ff00ff00ff00ff
)

// zeroByte is non-zero when some byte of w is zero (exact as a test; the
// bits it sets above the first zero byte are not meaningful).
func zeroByte(w uint64) uint64 { return (w - lsb8) &^ w & msb8 }

// special is non-zero when some byte of w is '#', '$', '*' or '}'.
func special(w uint64) uint64 {
	return zeroByte(w^('#'*lsb8)) | zeroByte(w^('$'*lsb8)) | zeroByte(w^('*'*lsb8)) | zeroByte(w^('}'*lsb8))
}

func isSpecial(b byte) bool { return b == '#' || b == '$' || b == '}' || b == '*' }

func fold(acc uint64) uint64 {
	return acc&0xffff + acc>>16&0xffff + acc>>32&0xffff + acc>>48
}

// sumBytes is the sum of p modulo 256.
func sumBytes(p []byte) byte {
	var sum uint64
	i := 0
	for i+512 <= len(p) {
		// 64 words in two accumulators of four 16-bit lanes: each lane
		// gets at most 32 x 510.
		var a, b uint64
		for end := i + 512; i < end; i += 16 {
			w, v := binary.LittleEndian.Uint64(p[i:]), binary.LittleEndian.Uint64(p[i+8:])
			a += w&odd8 + (w>>8)&odd8
			b += v&odd8 + (v>>8)&odd8
		}
		sum += fold(a) + fold(b)
	}
	for ; i < len(p); i++ {
		sum += uint64(p[i])
	}
	return byte(sum)
}

// escapeInto writes src escaped to dst and returns the length written and
// the sum of those bytes modulo 256. dst must have room for 2*len(src)
// bytes; it may overlap src if it starts at least len(src) bytes before
// it (each step stores a whole word, but never past what the reads have
// consumed).
func escapeInto(dst, src []byte) (int, byte) {
	dst = dst[:2*len(src)]
	var sum, acc uint64
	i, j, words := 0, 0, 0
	for i+8 <= len(src) && j+8 <= len(dst) {
		w := binary.LittleEndian.Uint64(src[i:])
		binary.LittleEndian.PutUint64(dst[j:], w)
		m := special(w)
		if m == 0 {
			acc += w&odd8 + (w>>8)&odd8
			i, j = i+8, j+8
		} else {
			// The lowest flagged byte is exact (zeroByte's stray bits
			// lie above a true zero byte of the same test).
			k := bits.TrailingZeros64(m) >> 3
			v := w & (1<<(8*k) - 1)
			acc += v&odd8 + (v>>8)&odd8
			e := src[i+k] ^ 0x20
			dst[j+k], dst[j+k+1] = '}', e
			sum += '}' + uint64(e)
			i, j = i+k+1, j+k+2
		}
		// Four 16-bit lanes gain at most 510 a word: fold before 128.
		if words++; words == 127 {
			sum += fold(acc)
			acc, words = 0, 0
		}
	}
	for ; i < len(src); i++ {
		b := src[i]
		if isSpecial(b) {
			dst[j], dst[j+1] = '}', b^0x20
			sum += '}' + uint64(b^0x20)
			j += 2
			continue
		}
		dst[j] = b
		sum += uint64(b)
		j++
	}
	return j, byte(sum + fold(acc))
}

// unescapeInto decodes the wire bytes of a packet payload from src into
// dst (which needs len(src)+8 bytes of room) until a byte it does not
// handle: '#', '$', '*', or a '}' whose escaped byte is not in src or is
// '#' or '$'. It returns the bytes consumed, the bytes written and the sum
// of the consumed bytes modulo 256.
func unescapeInto(dst, src []byte) (int, int, byte) {
	dst = dst[:len(src)+8]
	var sum, acc uint64
	i, j, words := 0, 0, 0
	for i+8 <= len(src) {
		w := binary.LittleEndian.Uint64(src[i:])
		binary.LittleEndian.PutUint64(dst[j:], w)
		m := special(w)
		if m == 0 {
			acc += w&odd8 + (w>>8)&odd8
			i, j = i+8, j+8
		} else {
			k := bits.TrailingZeros64(m) >> 3
			v := w & (1<<(8*k) - 1)
			acc += v&odd8 + (v>>8)&odd8
			i, j = i+k, j+k
			if src[i] != '}' || i+1 == len(src) || src[i+1] == '#' || src[i+1] == '$' {
				return i, j, byte(sum + fold(acc))
			}
			e := src[i+1]
			dst[j] = e ^ 0x20
			sum += '}' + uint64(e)
			i, j = i+2, j+1
		}
		if words++; words == 127 {
			sum += fold(acc)
			acc, words = 0, 0
		}
	}
	for i < len(src) {
		b := src[i]
		if isSpecial(b) {
			if b != '}' || i+1 == len(src) || src[i+1] == '#' || src[i+1] == '$' {
				break
			}
			dst[j] = src[i+1] ^ 0x20
			sum += '}' + uint64(src[i+1])
			i, j = i+2, j+1
			continue
		}
		dst[j] = b
		sum += uint64(b)
		i, j = i+1, j+1
	}
	return i, j, byte(sum + fold(acc))
}

// plainRun returns how much of p, up to the first '#' (or all of it),
// holds none of the other special bytes, or -1 when some is there. It
// scans with bytes.IndexByte, which the runtime vectorises: payloads
// without escapes (hex, text) cost a few passes at memory speed.
func plainRun(p []byte) int {
	end := bytes.IndexByte(p, '#')
	if end < 0 {
		end = len(p)
	}
	q := p[:end]
	if bytes.IndexByte(q, '}') >= 0 || bytes.IndexByte(q, '*') >= 0 || bytes.IndexByte(q, '$') >= 0 {
		return -1
	}
	return end
}
