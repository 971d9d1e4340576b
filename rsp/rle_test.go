package rsp

import (
	"bytes"
	"strings"
	"testing"
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
		if i+1 >= len(b) || len(out) == 0 {
			t.Fatalf("dangling run at %d in %q", i, b)
		}
		cnt := int(b[i+1]) - 29
		if b[i+1] == '#' || b[i+1] == '$' || cnt < 3 || cnt > 97 {
			t.Fatalf("bad run count %q in %q", b[i+1], b)
		}
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
		if got != tc.want {
			t.Errorf("compressRuns(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if exp := string(expandRuns(t, []byte(got))); exp != tc.in {
			t.Errorf("compressRuns(%q) expands to %q", tc.in, exp)
		}
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
		if bytes.ContainsAny(got, "#$") {
			t.Fatalf("special character in %q", got)
		}
		if exp := expandRuns(t, got); !bytes.Equal(exp, in) {
			t.Fatalf("round trip of %q gave %q", in, exp)
		}
	})
}
