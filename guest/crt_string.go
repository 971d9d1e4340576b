package guest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
)

// The C runtime's strings, characters and memory blocks exports (msvcrt.dll,
// ucrtbase.dll): their handlers, listed by crtExports in api_crt.go.

// crt_strlen implements strlen.
func crt_strlen(c *call) error { return c.ret(uint64(len(c.str(0)))) }

// crt_wcslen implements wcslen.
func crt_wcslen(c *call) error { return c.ret(uint64(len(process.UTF16Bytes(c.wstr(0), false)) / 2)) }

// crt_strnlen implements strnlen.
func crt_strnlen(c *call) error {
	s, _ := c.p.mem.ReadCString(c.arg(0), int(min(c.arg(1), process.MaxString)))
	return c.ret(uint64(len(s)))
}

// crt_strcmp implements strcmp.
func crt_strcmp(c *call) error { return c.ret(cmpResult(strings.Compare(c.str(0), c.str(1)))) }

// crt_strncmp implements strncmp.
func crt_strncmp(c *call) error {
	return c.ret(cmpResult(strings.Compare(cut(c.str(0), c.arg(2)), cut(c.str(1), c.arg(2)))))
}

// crt__stricmp implements _stricmp.
func crt__stricmp(c *call) error {
	return c.ret(cmpResult(strings.Compare(strings.ToLower(c.str(0)), strings.ToLower(c.str(1)))))
}

// crt__strnicmp implements _strnicmp.
func crt__strnicmp(c *call) error {
	return c.ret(cmpResult(strings.Compare(strings.ToLower(cut(c.str(0), c.arg(2))), strings.ToLower(cut(c.str(1), c.arg(2))))))
}

// crt_strcpy implements strcpy.
func crt_strcpy(c *call) error {
	c.wbytes(c.arg(0), append([]byte(c.str(1)), 0))
	return c.ret(c.arg(0))
}

// crt_strncpy implements strncpy.
func crt_strncpy(c *call) error {
	n := c.arg(2)
	if n > 1<<28 {
		return fmt.Errorf("strncpy of %#x bytes", n)
	}
	s, _ := c.p.mem.ReadCString(c.arg(1), int(n))
	b := make([]byte, n)
	copy(b, s)
	c.wbytes(c.arg(0), b)
	return c.ret(c.arg(0))
}

// crt_strcat implements strcat.
func crt_strcat(c *call) error {
	d := c.str(0)
	c.wbytes(c.arg(0)+uint64(len(d)), append([]byte(c.str(1)), 0))
	return c.ret(c.arg(0))
}

// crt_strncat implements strncat.
func crt_strncat(c *call) error {
	d := c.str(0)
	c.wbytes(c.arg(0)+uint64(len(d)), append([]byte(cut(c.str(1), c.arg(2))), 0))
	return c.ret(c.arg(0))
}

// crt_strchr implements strchr.
func crt_strchr(c *call) error {
	s := c.str(0)
	ch := byte(c.arg(1))
	if ch == 0 {
		return c.ret(c.arg(0) + uint64(len(s)))
	}
	if i := strings.IndexByte(s, ch); i >= 0 {
		return c.ret(c.arg(0) + uint64(i))
	}
	return c.ret(0)
}

// crt_strrchr implements strrchr.
func crt_strrchr(c *call) error {
	s := c.str(0)
	ch := byte(c.arg(1))
	if ch == 0 {
		return c.ret(c.arg(0) + uint64(len(s)))
	}
	if i := strings.LastIndexByte(s, ch); i >= 0 {
		return c.ret(c.arg(0) + uint64(i))
	}
	return c.ret(0)
}

// crt_strstr implements strstr.
func crt_strstr(c *call) error {
	if i := strings.Index(c.str(0), c.str(1)); i >= 0 {
		return c.ret(c.arg(0) + uint64(i))
	}
	return c.ret(0)
}

// crt_memset implements memset.
func crt_memset(c *call) error {
	n := c.arg(2)
	if n > 1<<28 {
		return fmt.Errorf("memset of %#x bytes", n)
	}
	c.wbytes(c.arg(0), bytes.Repeat([]byte{byte(c.arg(1))}, int(n)))
	return c.ret(c.arg(0))
}

// crt_memcmp implements memcmp.
func crt_memcmp(c *call) error {
	a, b := c.rbytes(c.arg(0), c.arg(2)), c.rbytes(c.arg(1), c.arg(2))
	return c.ret(cmpResult(bytes.Compare(a, b)))
}

// crt_memchr implements memchr.
func crt_memchr(c *call) error {
	b := c.rbytes(c.arg(0), c.arg(2))
	if i := bytes.IndexByte(b, byte(c.arg(1))); i >= 0 {
		return c.ret(c.arg(0) + uint64(i))
	}
	return c.ret(0)
}

// crt_toupper implements toupper.
func crt_toupper(c *call) error { return c.ret(uint64(uint32(toUpper(int32(c.arg(0)))))) }

// crt_tolower implements tolower.
func crt_tolower(c *call) error { return c.ret(uint64(uint32(toLower(int32(c.arg(0)))))) }

// crt_isxdigit implements isxdigit.
var crt_isxdigit = ctype(func(b byte) bool {
	return b >= '0' && b <= '9' || (b|0x20) >= 'a' && (b|0x20) <= 'f'
})

// crt_ispunct implements ispunct.
var crt_ispunct = ctype(func(b byte) bool {
	return b > 0x20 && b < 0x7F && !(b >= '0' && b <= '9' || (b|0x20) >= 'a' && (b|0x20) <= 'z')
})

// crt_atoi implements atoi.
func crt_atoi(c *call) error { return c.ret(uint64(uint32(int32(parseInt(c.str(0), 10))))) }

// crt_atol implements atol.
func crt_atol(c *call) error { return c.ret(uint64(uint32(int32(parseInt(c.str(0), 10))))) }

// crt_atoll implements atoll.
func crt_atoll(c *call) error { return c.ret(uint64(parseInt(c.str(0), 10))) }

// crt__atoi64 implements _atoi64.
func crt__atoi64(c *call) error { return c.ret(uint64(parseInt(c.str(0), 10))) }

// crt_strtol implements strtol.
func crt_strtol(c *call) error { return strtox(c, true, 4) }

// crt_strtoul implements strtoul.
func crt_strtoul(c *call) error { return strtox(c, false, 4) }

// crt_strtoll implements strtoll.
func crt_strtoll(c *call) error { return strtox(c, true, 8) }

// crt_strtoull implements strtoull.
func crt_strtoull(c *call) error { return strtox(c, false, 8) }

// crt__strtoi64 implements _strtoi64.
func crt__strtoi64(c *call) error { return strtox(c, true, 8) }

// crt__strtoui64 implements _strtoui64.
func crt__strtoui64(c *call) error { return strtox(c, false, 8) }

// crt_abs implements abs.
func crt_abs(c *call) error {
	v := int32(c.arg(0))
	if v < 0 {
		v = -v
	}
	return c.ret(uint64(uint32(v)))
}

// crt_labs implements labs.
func crt_labs(c *call) error {
	v := int32(c.arg(0))
	if v < 0 {
		v = -v
	}
	return c.ret(uint64(uint32(v)))
}

// crt_llabs implements llabs.
func crt_llabs(c *call) error {
	v := int64(c.arg(0))
	if v < 0 {
		v = -v
	}
	return c.ret(uint64(v))
}

// crt__abs64 implements _abs64.
func crt__abs64(c *call) error {
	v := int64(c.arg(0))
	if v < 0 {
		v = -v
	}
	return c.ret(uint64(v))
}

// crt_rand implements rand.
func crt_rand(c *call) error {
	s := &c.p.win32.randSeed
	*s = *s*214013 + 2531011
	return c.ret(uint64((*s >> 16) & 0x7FFF))
}

// crt_srand implements srand.
func crt_srand(c *call) error { c.p.win32.randSeed = uint32(c.arg(0)); return c.ret(0) }

// crt_clock implements clock.
func crt_clock(c *call) error { return c.ret(uint64(c.p.since().Milliseconds())) }

// crt_getenv implements getenv.
func crt_getenv(c *call) error {
	name := c.str(0)
	st := c.crt()
	if st.env == 0 {
		return c.ret(0)
	}
	arr, err := c.p.mem.ReadU64(st.env)
	if err != nil {
		return err
	}
	for i := uint64(0); i < 4096; i++ {
		sp, err := c.p.mem.ReadU64(arr + 8*i)
		if err != nil || sp == 0 {
			break
		}
		s, _ := c.p.mem.ReadCString(sp, 0)
		if k, _, ok := strings.Cut(s, "="); ok && strings.EqualFold(k, name) {
			return c.ret(sp + uint64(len(k)) + 1)
		}
	}
	return c.ret(0)
}

func cmpResult(r int) uint64 { return uint64(uint32(int32(r))) }

func cut(s string, n uint64) string {
	if uint64(len(s)) > n {
		return s[:n]
	}
	return s
}

func toUpper(v int32) int32 {
	if v >= 'a' && v <= 'z' {
		return v - 32
	}
	return v
}

func toLower(v int32) int32 {
	if v >= 'A' && v <= 'Z' {
		return v + 32
	}
	return v
}

func ctype(f func(byte) bool) apiFunc {
	return func(c *call) error {
		v := int32(c.arg(0))
		if v >= 0 && v < 256 && f(byte(v)) {
			return c.ret(1)
		}
		return c.ret(0)
	}
}

func strdup(c *call) error {
	if c.arg(0) == 0 {
		return c.ret(0)
	}
	a, err := c.p.heap.allocBytes(append([]byte(c.str(0)), 0))
	if err != nil {
		return err
	}
	return c.ret(a)
}

func memmove(c *call) error {
	n := c.arg(2)
	if n > 1<<28 {
		return fmt.Errorf("copy of %#x bytes", n)
	}
	c.wbytes(c.arg(0), c.rbytes(c.arg(1), n))
	return c.ret(c.arg(0))
}

// parseInt parses like strtol with base detection; it returns the value
// (saturated) and how many bytes it consumed.
func parseIntN(s string, base int, signed bool, bits int) (uint64, int) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] >= 9 && s[i] <= 13) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if (base == 0 || base == 16) && i+1 < len(s) && s[i] == '0' && (s[i+1]|0x20) == 'x' {
		if i+2 < len(s) && isBaseDigit(s[i+2], 16) {
			base = 16
			i += 2
		}
	}
	if base == 0 {
		if i < len(s) && s[i] == '0' {
			base = 8
		} else {
			base = 10
		}
	}
	if base < 2 || base > 36 {
		return 0, 0
	}
	start := i
	for i < len(s) && isBaseDigit(s[i], base) {
		i++
	}
	if i == start {
		return 0, 0
	}
	u, err := strconv.ParseUint(s[start:i], base, bits)
	if err != nil {
		u = 1<<bits - 1
		if bits == 64 {
			u = ^uint64(0)
		}
	}
	if signed {
		max := uint64(1)<<(bits-1) - 1
		if neg {
			if u > max+1 {
				u = max + 1
			}
			return -u, i
		}
		if u > max {
			u = max
		}
		return u, i
	}
	if neg {
		u = -u
	}
	return u, i
}

func isBaseDigit(b byte, base int) bool {
	var d int
	switch {
	case b >= '0' && b <= '9':
		d = int(b - '0')
	case (b|0x20) >= 'a' && (b|0x20) <= 'z':
		d = int((b|0x20)-'a') + 10
	default:
		return false
	}
	return d < base
}

func parseInt(s string, base int) int64 {
	v, _ := parseIntN(s, base, true, 64)
	return int64(v)
}

func strtox(c *call, signed bool, size int) error {
	s := c.str(0)
	v, n := parseIntN(s, int(int32(c.arg(2))), signed, 8*size)
	if c.arg(1) != 0 {
		c.w64(c.arg(1), c.arg(0)+uint64(n))
	}
	if size == 4 {
		if signed {
			return c.ret(uint64(uint32(int32(int64(v)))))
		}
		return c.ret(uint64(uint32(v)))
	}
	return c.ret(v)
}

func crtTime(c *call) error {
	t := uint64(c.p.now().Unix())
	c.w64(c.arg(0), t)
	return c.ret(t)
}
