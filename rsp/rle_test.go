package rsp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expandRuns is the decoder side of compressRuns, written independently
// from the spec for the test.
func expandRuns(t *testing.T, b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '*' {
			out = append(out, b[i])
			continue
		}
		require.True(t, i+1 < len(b) && len(out) > 0, "dangling run at %d in %q", i, b)
		cnt := int(b[i+1]) - 29
		require.True(t, b[i+1] != '#' && b[i+1] != '$' && cnt >= 3 && cnt <= 97, "bad run count %q in %q", b[i+1], b)
		out = append(out, bytes.Repeat(out[len(out)-1:], cnt)...)
		i++
	}
	return out
}

func TestCompressRuns(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", ""},
		{"0", "0"},
		{"000", "000"},       // two repeats: not worth it
		{"0000", "0* "},      // 3 repeats: ' ' is 3+29
		{"0000000", "0*\"0"}, // 6 repeats would be '#': cut at 5
		{"00000000", "0*\"00"},
		{"abcd", "abcd"},
		{strings.Repeat("f", 98), "f*~"},
		{strings.Repeat("f", 99), "f*~f"},
	} {
		b := []byte(tc.in)
		got := string(b[:compressRuns(b)])
		assert.Equal(t, tc.want, got, "compressRuns(%q)", tc.in)
		assert.Equal(t, tc.in, string(expandRuns(t, []byte(got))), "compressRuns(%q) expanded", tc.in)
	}
}

func FuzzCompressRuns(f *testing.F) {
	f.Add([]byte("0000000000000000ffff1234"))
	f.Add(bytes.Repeat([]byte("0"), 300))
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Only hex digits reach compressRuns.
		in := make([]byte, len(raw))
		for i, b := range raw {
			in[i] = hexdigits[b&15]
		}
		b := append([]byte(nil), in...)
		got := b[:compressRuns(b)]
		require.False(t, bytes.ContainsAny(got, "#$"), "special character in %q", got)
		require.Equal(t, string(in), string(expandRuns(t, got)), "round trip of %q", in)
	})
}
