package main

import (
	"errors"
	"testing"
)

func TestOneLineEscapes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain  error\nsecond line", "plain error second line"},
		{"bad name \x1b]0;pwned\x07 in import", `bad name \x1b]0;pwned\x07 in import`},
		{"del \x7f and c1 \u009b", `del \x7f and c1 \x9b`},
		{"ünïcode is fine", "ünïcode is fine"},
	} {
		if got := oneLine(errors.New(tc.in)); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
