package process

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// parseArgs splits a command line the way CommandLineToArgvW does
// (Microsoft's documented rules for the C runtimes): 2n backslashes
// before a quote give n and the quote toggles quoting, 2n+1 give n and a
// literal quote; other backslashes are literal.
func parseArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQuotes, have := false, false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(s) && s[i] == '\\' {
				n++
				i++
			}
			if i < len(s) && s[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
					i++
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
			}
			have = true
			continue
		case c == '"':
			inQuotes = !inQuotes
			have = true
		case (c == ' ' || c == '\t') && !inQuotes:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
		i++
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// TestCommandLineRoundTrip: every argument comes back whole from the
// command line CommandLine builds, backslashes before quotes included
// (the Wine userland's own copy of QuoteArg wrote 3n+1 backslashes for n
// before a quote, which the parser reads back as a different argument).
func TestCommandLineRoundTrip(t *testing.T) {
	args := []string{"", "plain", "two words", `a"b`, `a\"b`, `a\\"b`, `trail\`, `trail space\ `, `C:\dir\`, `\\server\share`, "tab\there", `"`, `\`}
	got := parseArgs(CommandLine(`C:\rspstub\prog.exe`, args))
	assert.Equal(t, append([]string{`C:\rspstub\prog.exe`}, args...), got, CommandLine(`C:\rspstub\prog.exe`, args))
	assert.Equal(t, `"a\\\"b"`, QuoteArg(`a\"b`), "one backslash before a quote: three, then the quote")
}

func TestEnvironmentBlock(t *testing.T) {
	assert.Equal(t, []byte{0, 0, 0, 0}, EnvironmentBlock(nil))
	assert.Equal(t, []byte{'A', 0, '=', 0, '1', 0, 0, 0, 'B', 0, '=', 0, 0, 0, 0, 0}, EnvironmentBlock([]string{"A=1", "B="}))
}
