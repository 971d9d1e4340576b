package process

import "strings"

// QuoteArg quotes one argument the way CommandLineToArgvW and the C
// runtimes parse it back: unchanged when it has no blank and no quote;
// otherwise in double quotes, with each quote escaped by a backslash and
// the backslashes before a quote (or before the closing one) doubled.
func QuoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\n\v\"") {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	bs := 0
	for _, r := range a {
		switch r {
		case '\\':
			bs++
			continue
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*bs+1))
			b.WriteByte('"')
		default:
			b.WriteString(strings.Repeat(`\`, bs))
			b.WriteRune(r)
		}
		bs = 0
	}
	b.WriteString(strings.Repeat(`\`, 2*bs))
	b.WriteByte('"')
	return b.String()
}

// CommandLine is the command line of a program and its arguments, each
// quoted by QuoteArg, separated by spaces.
func CommandLine(program string, args []string) string {
	parts := []string{QuoteArg(program)}
	for _, a := range args {
		parts = append(parts, QuoteArg(a))
	}
	return strings.Join(parts, " ")
}

// EnvironmentBlock encodes "NAME=value" strings as a process's
// environment block: each in UTF-16 with its NUL, then one more NUL (an
// empty environment is two NULs).
func EnvironmentBlock(env []string) []byte {
	var b []byte
	for _, e := range env {
		b = append(b, UTF16Bytes(e, true)...)
	}
	if len(env) == 0 {
		b = append(b, 0, 0)
	}
	return append(b, 0, 0)
}
