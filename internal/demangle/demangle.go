package demangle

import (
	"strings"

	itanium "github.com/ianlancetaylor/demangle"
)

// Name demangles a C++ symbol name of either ABI: Itanium (_Z...) or
// Microsoft (?...). ok is false for a name that is not mangled or that
// the decoders cannot read; the caller then shows it as it is.
func Name(name string) (string, bool) {
	switch {
	case len(name) > MaxName:
		return "", false
	case strings.HasPrefix(name, "_Z"):
		// MaxLength bounds the output (2^17 bytes); the library has its
		// own fuzz tests.
		out, err := itanium.ToString(name, itanium.MaxLength(17))
		if err != nil || out == name || len(out) > maxOutput {
			return "", false
		}
		return out, true
	case strings.HasPrefix(name, "?"):
		out, err := MSVC(name)
		if err != nil {
			return "", false
		}
		return out, true
	}
	return "", false
}
