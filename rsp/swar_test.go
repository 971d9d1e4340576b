package rsp

import (
	"bytes"
	"encoding/hex"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// patterned is loop.c's fill pattern: no runs, every byte value.
func patterned(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(uint32(i)*167 + uint32(i)>>9)
	}
	return p
}

func isSpecial(b byte) bool { return b == '#' || b == '$' || b == '}' || b == '*' }

// escapeRef and unescapeRef are the byte-at-a-time definitions.
func escapeRef(src []byte) ([]byte, byte) {
	out := []byte{}
	var sum byte
	for _, b := range src {
		if isSpecial(b) {
			out = append(out, '}', b^0x20)
		} else {
			out = append(out, b)
		}
	}
	for _, b := range out {
		sum += b
	}
	return out, sum
}

func unescapeRef(src []byte) (int, []byte, byte) {
	out := []byte{}
	var sum byte
	i := 0
	for i < len(src) {
		b := src[i]
		if isSpecial(b) {
			if b != '}' || i+1 == len(src) || src[i+1] == '#' || src[i+1] == '$' {
				break
			}
			out = append(out, src[i+1]^0x20)
			sum += b + src[i+1]
			i += 2
			continue
		}
		out = append(out, b)
		sum += b
		i++
	}
	return i, out, sum
}

// inputs are byte strings dense and sparse in special bytes, of every
// small length and some long ones.
func inputs() [][]byte {
	r := rand.New(rand.NewSource(1))
	var in [][]byte
	alphabet := []byte{'#', '$', '*', '}', 'a', 0, 0x03, 0x5d}
	for n := 0; n < 80; n++ {
		for k := 0; k < 20; k++ {
			p := make([]byte, n)
			for i := range p {
				if k%2 == 0 {
					p[i] = alphabet[r.Intn(len(alphabet))]
				} else {
					p[i] = byte(r.Intn(256))
				}
			}
			in = append(in, p)
		}
	}
	// Long ones, across scanBlock's boundaries: dense in special bytes,
	// sparse, and dense patches in sparse data.
	for _, n := range []int{scanBlock - 1, scanBlock, scanBlock + 1, 2*scanBlock + 3, 50000} {
		dense, sparse, patches := make([]byte, n), make([]byte, n), make([]byte, n)
		for i := range dense {
			dense[i] = alphabet[r.Intn(len(alphabet))]
			sparse[i] = byte(r.Intn(256))
			patches[i] = sparse[i]
			if i/100%3 == 0 {
				patches[i] = alphabet[r.Intn(4)]
			}
		}
		in = append(in, dense, sparse, patches)
	}
	return append(in, patterned(1<<16), make([]byte, 5000), patterned(100003)[7:])
}

func TestEscapeInto(t *testing.T) {
	for _, src := range inputs() {
		want, wantSum := escapeRef(src)
		dst := make([]byte, 2*len(src))
		n, sum := escapeInto(dst, src)
		require.Equal(t, want, dst[:n], "%q", src)
		require.Equal(t, wantSum, sum, "%q", src)
		// In place: the source at the end of the room.
		room := make([]byte, 2*len(src))
		copy(room[len(src):], src)
		n, sum = escapeInto(room, room[len(src):])
		require.Equal(t, want, room[:n], "in place %q", src)
		require.Equal(t, wantSum, sum)
	}
}

func TestUnescapeInto(t *testing.T) {
	for _, raw := range inputs() {
		wire, _ := escapeRef(raw)
		// The packet's end, then what a read buffer holds after it.
		ended := append(append([]byte{}, wire...), "#5a$}*x"...)
		for _, src := range [][]byte{raw, wire, ended} {
			wantUsed, want, wantSum := unescapeRef(src)
			dst := make([]byte, len(src))
			used, n, sum := unescapeInto(dst, src)
			require.Equal(t, wantUsed, used, "%q", src)
			require.Equal(t, want, dst[:n], "%q", src)
			require.Equal(t, wantSum, sum, "%q", src)
		}
	}
}

func TestSumBytes(t *testing.T) {
	for _, p := range inputs() {
		var want byte
		for _, b := range p {
			want += b
		}
		assert.Equal(t, want, sumBytes(p))
	}
}

// BenchmarkEscape escapes and unescapes 1 MiB of loop.c's pattern (one
// byte in 64 special), zeros, random bytes and special bytes only, and
// sums the pattern; throughput is of the unescaped bytes.
func BenchmarkEscape(b *testing.B) {
	r := rand.New(rand.NewSource(3))
	random := make([]byte, 1<<20)
	r.Read(random)
	dense := make([]byte, 1<<20)
	for i := range dense {
		dense[i] = "#$*}"[i%4]
	}
	for _, in := range []struct {
		name string
		p    []byte
	}{{"pattern", patterned(1 << 20)}, {"zero", make([]byte, 1<<20)}, {"random", random}, {"special", dense}} {
		wire, _ := escapeRef(in.p)
		dst := make([]byte, 2*len(in.p)+8)
		b.Run("escape/"+in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.p)))
			for b.Loop() {
				escapeInto(dst, in.p)
			}
		})
		b.Run("unescape/"+in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.p)))
			for b.Loop() {
				if used, _, _ := unescapeInto(dst, wire); used != len(wire) {
					b.Fatal(used)
				}
			}
		})
	}
	src := patterned(1 << 20)
	b.Run("sum", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			sumBytes(src)
		}
	})
	hexSrc := []byte(hex.EncodeToString(src))
	dst := make([]byte, len(src))
	b.Run("decodeHex", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			decodeHex(dst, hexSrc)
		}
	})
}

// FuzzEscape: escapeInto and unescapeInto against the byte-at-a-time
// definitions, on any bytes, in place too.
func FuzzEscape(f *testing.F) {
	for _, p := range inputs()[:200] {
		f.Add(p)
	}
	f.Add(patterned(3 * scanBlock))
	f.Fuzz(func(t *testing.T, src []byte) {
		want, wantSum := escapeRef(src)
		room := make([]byte, 2*len(src))
		copy(room[len(src):], src)
		n, sum := escapeInto(room, room[len(src):])
		require.Equal(t, want, room[:n])
		require.Equal(t, wantSum, sum)
		for _, wire := range [][]byte{src, want} {
			wantUsed, wantOut, wantSum := unescapeRef(wire)
			dst := make([]byte, len(wire))
			used, n, sum := unescapeInto(dst, wire)
			require.Equal(t, wantUsed, used)
			require.Equal(t, wantOut, dst[:n])
			require.Equal(t, wantSum, sum)
		}
	})
}

// TestDecodeHex: decodeHex against encoding/hex, both cases, in place,
// and stopping at the first pair that holds a non-digit, wherever it is.
func TestDecodeHex(t *testing.T) {
	for _, raw := range inputs() {
		lower := hex.EncodeToString(raw)
		for _, h := range []string{lower, strings.ToUpper(lower)} {
			dst := make([]byte, len(raw))
			n, ok := decodeHex(dst, []byte(h))
			require.True(t, ok, "%s", h)
			require.Equal(t, len(raw), n)
			require.Equal(t, raw, dst)
			got, ok := decodeHexInPlace([]byte(h))
			require.True(t, ok)
			require.Equal(t, raw, got, "in place")
		}
	}
	// Every byte that is not a digit, at each position of 8 and 24
	// digits: the bytes before it decode, and it stops there.
	digits := []byte("0123456789abcdefABCDEF")
	for c := 0; c < 256; c++ {
		if bytes.IndexByte(digits, byte(c)) >= 0 {
			continue
		}
		for _, l := range []int{8, 24} {
			for at := 0; at < l; at++ {
				src := []byte(strings.Repeat("a5", l/2))
				src[at] = byte(c)
				dst := make([]byte, l/2)
				n, ok := decodeHex(dst, src)
				require.False(t, ok, "%q", src)
				require.Equal(t, at/2, n, "%q", src)
				require.Equal(t, bytes.Repeat([]byte{0xa5}, at/2), dst[:n])
			}
		}
	}
	// A short destination: as many bytes as it holds.
	dst := make([]byte, 3)
	n, ok := decodeHex(dst, []byte("0102030405060708"))
	assert.True(t, ok)
	assert.Equal(t, 3, n)
	assert.Equal(t, []byte{1, 2, 3}, dst)
}

func TestEncodeHex(t *testing.T) {
	for _, src := range inputs() {
		want := []byte(hex.EncodeToString(src))
		var wantSum byte
		for _, b := range want {
			wantSum += b
		}
		dst := make([]byte, 2*len(src))
		require.Equal(t, wantSum, encodeHex(dst, src))
		require.Equal(t, want, dst)
		// In place, as putHexRead does: the bytes in the second half.
		room := make([]byte, 2*len(src))
		copy(room[len(src):], src)
		require.Equal(t, wantSum, encodeHex(room, room[len(src):]), "in place %x", src)
		require.Equal(t, want, room, "in place %x", src)
	}
}
