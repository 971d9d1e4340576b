package rsp

import "bytes"

// Escaping and unescaping by search: the runtime's bytes.IndexByte
// (vectorised) finds the next byte that needs work and copy moves the
// plain run before it. Binary memory holds few of the four special bytes
// (the perf harness's pattern, every byte value in turn, has one in 64),
// so most bytes are only touched by those vector loops and by sumBytes.
// The work goes a block at a time: the block's first pass brings it into
// the first-level cache and the other passes find it there (a whole
// packet is a megabyte, more than a core's caches keep).
//
// Where special bytes come close together (several in a row, each a few
// bytes after the last), a search each would cost more than a look at
// every byte: a byte loop without data-dependent branches takes over for
// a stretch.

// scanBlock is how many source bytes are escaped or unescaped at a time;
// unescapeInto's first block is firstBlock, and each next one four times
// the last, up to scanBlock.
const (
	scanBlock  = 16 << 10
	firstBlock = 64
)

// probeLen is how many bytes unescapeInto looks at one by one before it
// searches.
const probeLen = 16

// denseGap, denseCount and denseRun: more than denseCount special bytes
// in a row, each at most denseGap after the last, switch to the byte loop
// for the next denseRun bytes.
const (
	denseGap   = 8
	denseCount = 4
	denseRun   = 64
)

// escChars are the bytes that are escaped, in the order of escapeInto's
// next array; escIndex[c] is c's index there.
var escChars = [4]byte{'#', '$', '*', '}'}

var escIndex = func() (t [256]uint8) {
	for k, c := range escChars {
		t[c] = uint8(k)
	}
	return t
}()

// isEsc[c] is 1 for the bytes escapeInto escapes, isBrace[c] for '}'.
var isEsc, isBrace = func() (esc, brace [256]uint8) {
	for _, c := range escChars {
		esc[c] = 1
	}
	brace['}'] = 1
	return esc, brace
}()

// indexFrom is the index of the first c in p at or after i, or len(p).
func indexFrom(p []byte, i int, c byte) int {
	if k := bytes.IndexByte(p[i:], c); k >= 0 {
		return i + k
	}
	return len(p)
}

// closeRun counts special bytes in a row that are at most denseGap
// apart: it returns the new count for one found at p after one at last.
func closeRun(count, p, last int) int {
	if p-last <= denseGap {
		return count + 1
	}
	return 1
}

// escapeInto writes src escaped to dst and returns the length written and
// the sum of those bytes modulo 256. dst must have room for 2*len(src)
// bytes; it may overlap src if it starts at least len(src) bytes before
// it (what is written never reaches a byte of src not yet read).
func escapeInto(dst, src []byte) (int, byte) {
	dst = dst[:2*len(src)]
	var sum uint64
	i, j := 0, 0
	last, count := -denseGap-1, 0 // the last special byte; closeRun's count
	for i < len(src) {
		end := min(len(src), i+scanBlock)
		blk := src[:end]
		// The escaped bytes' sum is the source's, plus what each escape
		// adds. sumBytes reads the block before any of it is written.
		sum += uint64(sumBytes(blk[i:]))
		// next[k]: the first escChars[k] at or after i in the block, end
		// for none. Each search starts where the last one of its byte
		// ended: the block is scanned once per special byte.
		var next [4]int
		for k, c := range escChars {
			next[k] = indexFrom(blk, i, c)
		}
		for {
			p := min(next[0], next[1], next[2], next[3])
			if p > i {
				j += copy(dst[j:], blk[i:p]) // memmove: dst may overlap src
				i = p
			}
			if p == end {
				break
			}
			b := blk[p]
			e := b ^ 0x20
			dst[j], dst[j+1] = '}', e
			sum += '}' + uint64(e) - uint64(b) // modulo 2^64, so modulo 256
			i, j = p+1, j+2
			if count = closeRun(count, p, last); count <= denseCount {
				next[escIndex[b]] = indexFrom(blk, i, b)
			} else {
				i, j, sum = escapeBytes(dst, blk, i, j, sum, min(end, i+denseRun))
				for k, c := range escChars {
					if next[k] < i {
						next[k] = indexFrom(blk, i, c)
					}
				}
			}
			last = p
		}
	}
	return j, byte(sum)
}

// escapeBytes is escapeInto's loop over src[i:q] a byte at a time: t is
// 1 for a byte to escape.
func escapeBytes(dst, src []byte, i, j int, sum uint64, q int) (int, int, uint64) {
	for ; i < q; i++ {
		b := src[i] // read before dst[j+t] is written (in place)
		t := int(isEsc[b])
		e := b ^ byte(t<<5)
		dst[j] = b ^ (byte(-t) & (b ^ '}'))
		dst[j+t] = e
		sum += uint64(t) * ('}' + uint64(e) - uint64(b))
		j += 1 + t
	}
	return i, j, sum
}

// unescapeInto decodes the wire bytes of a packet payload from src into
// dst (which needs len(src) bytes of room) until a byte it does not
// handle: '#', '$', '*', or a '}' whose escaped byte is not in src or is
// '#' or '$'. It returns the bytes consumed, the bytes written and the sum
// of the consumed bytes modulo 256.
func unescapeInto(dst, src []byte) (int, int, byte) {
	dst = dst[:len(src)]
	// The first bytes one at a time: a caller that stops at each of many
	// run-length runs ('*') comes back here for a few bytes each time,
	// and the searches below would cost more than those bytes.
	i, j := 0, 0
	for i < min(len(src), probeLen) {
		b := src[i]
		if isEsc[b] == 0 {
			dst[j] = b
			i, j = i+1, j+1
			continue
		}
		if b != '}' || i+1 == len(src) || src[i+1] == '#' || src[i+1] == '$' {
			return i, j, sumBytes(src[:i])
		}
		dst[j] = src[i+1] ^ 0x20
		i, j = i+2, j+1
	}
	sum := uint64(sumBytes(src[:i]))
	last, count := -denseGap-1, 0 // the last escape; closeRun's count
	// The blocks start small and grow: a caller that stops at each of
	// many run-length runs ('*') must not pay a block's searches each time.
	block := firstBlock
	for i < len(src) {
		from := i
		// Searches stop at the block's end or at a '#' in it: nothing
		// after the packet's end is looked at (the rest of a read buffer
		// holds the next packets).
		end := indexFrom(src[:min(len(src), i+block)], i, '#')
		block = min(4*block, scanBlock)
		s := src[:end]
		dollar, star, brace := indexFrom(s, i, '$'), indexFrom(s, i, '*'), indexFrom(s, i, '}')
		stop := false
		for {
			p := min(dollar, star, brace)
			if p > i {
				j += copy(dst[j:], s[i:p])
				i = p
			}
			if p == end {
				// '#' ends the packet; a block's end, the block.
				stop = end < len(src) && src[end] == '#'
				break
			}
			// '$', '*', and a '}' whose escaped byte is '#', '$' or not
			// there yet stop here. The escaped byte may be the next
			// block's first.
			if p != brace || p+1 == len(src) || src[p+1] == '#' || src[p+1] == '$' {
				stop = true
				break
			}
			dst[j] = src[p+1] ^ 0x20
			i, j = p+2, j+1
			if i >= end {
				break
			}
			if star < i { // the escaped byte was '*'
				star = indexFrom(s, i, '*')
			}
			if count = closeRun(count, p, last); count > denseCount {
				// Up to where a '}' would escape '$' or '*' or need a
				// byte at or past end.
				if q := min(i+denseRun, dollar, star, end) - 1; q > i {
					i, j = unescapeBytes(dst, s, i, j, q)
				}
			}
			brace = indexFrom(s, i, '}')
			last = p
		}
		sum += uint64(sumBytes(src[from:i]))
		if stop {
			break
		}
	}
	return i, j, byte(sum)
}

// unescapeBytes is unescapeInto's loop from s[i] a byte at a time, up to
// q at least: t is 1 at a '}'. Nothing before q+1 is '$' or '*', and q+1
// is inside s.
func unescapeBytes(dst, s []byte, i, j, q int) (int, int) {
	for i < q {
		t := int(isBrace[s[i]])
		dst[j] = s[i+t] ^ byte(t<<5)
		i, j = i+1+t, j+1
	}
	return i, j
}
