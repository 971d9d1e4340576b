package rsp

import (
	"encoding/hex"
	"math/rand"
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
		for _, src := range [][]byte{raw, func() []byte { e, _ := escapeRef(raw); return e }()} {
			wantUsed, want, wantSum := unescapeRef(src)
			dst := make([]byte, len(src)+8)
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

func BenchmarkEscape(b *testing.B) {
	src := patterned(1 << 20)
	wire, _ := escapeRef(src)
	dst := make([]byte, 2*len(src)+8)
	b.Run("escape", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			escapeInto(dst, src)
		}
	})
	b.Run("unescape", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if used, _, _ := unescapeInto(dst, wire); used != len(wire) {
				b.Fatal(used)
			}
		}
	})
	b.Run("sum", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			sumBytes(src)
		}
	})
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
