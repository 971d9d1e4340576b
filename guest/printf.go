package guest

import (
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
)

// argSource yields printf's variadic arguments: each is one 8-byte slot
// (Windows x64 passes doubles to varargs in integer slots too).
type argSource interface {
	next() uint64
}

// regArgs reads call arguments starting at index first (registers, then
// the stack).
type regArgs struct {
	c *call
	i int
}

func (a *regArgs) next() uint64 { v := a.c.arg(a.i); a.i++; return v }

// vaList reads slots from a va_list pointer.
type vaList struct {
	p   *Process
	ptr uint64
	err error
}

func (a *vaList) next() uint64 {
	v, err := a.p.mem.ReadU64(a.ptr)
	if err != nil && a.err == nil {
		a.err = err
	}
	a.ptr += 8
	return v
}

// printfStyle selects the CRT's differences: msvcrt prints three exponent
// digits ("1.0e+000"), ucrt two.
type printfStyle struct {
	expDigits int
	// roundHalfUp rounds an exact decimal tie away from zero (msvcrt:
	// printf("%.0f", 2.5) is "3"); otherwise ties go to even (ucrt, C99).
	roundHalfUp bool
}

const maxFormatOutput = 1 << 24

// format implements the CRT printf family. Strings are read from guest
// memory; %n is refused (ignored), as modern CRTs do by default.
func (p *Process) format(f string, args argSource, st printfStyle) (string, error) {
	var out strings.Builder
	var ferr error
	for i := 0; i < len(f); i++ {
		if out.Len() > maxFormatOutput {
			break
		}
		ch := f[i]
		if ch != '%' {
			out.WriteByte(ch)
			continue
		}
		i++
		if i >= len(f) {
			break
		}
		// flags
		var minus, plus, space, hash, zero bool
	flags:
		for ; i < len(f); i++ {
			switch f[i] {
			case '-':
				minus = true
			case '+':
				plus = true
			case ' ':
				space = true
			case '#':
				hash = true
			case '0':
				zero = true
			default:
				break flags
			}
		}
		width := -1
		if i < len(f) && f[i] == '*' {
			width = int(int32(args.next()))
			if width < 0 {
				minus = true
				width = -width
			}
			i++
		} else {
			for ; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
				if width < 0 {
					width = 0
				}
				if width < 1<<20 {
					width = width*10 + int(f[i]-'0')
				}
			}
		}
		prec := -1
		if i < len(f) && f[i] == '.' {
			i++
			prec = 0
			if i < len(f) && f[i] == '*' {
				prec = int(int32(args.next()))
				i++
			} else {
				for ; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
					if prec < 1<<20 {
						prec = prec*10 + int(f[i]-'0')
					}
				}
			}
		}
		if width > 1<<20 {
			width = 1 << 20
		}
		if prec > 1<<20 {
			prec = 1 << 20
		}
		// length
		size := 4 // bytes of an integer argument
		wide := false
		for i < len(f) {
			switch {
			case f[i] == 'h':
				if i+1 < len(f) && f[i+1] == 'h' {
					size = 1 // msvcrt has no hh: it reads h twice
					if st.roundHalfUp {
						size = 2
					}
					i += 2
				} else {
					size = 2
					i++
				}
				continue
			case f[i] == 'l':
				if i+1 < len(f) && f[i+1] == 'l' {
					size = 8
					i += 2
				} else {
					size = 4
					wide = true
					i++
				}
				continue
			case f[i] == 'L' || f[i] == 'q' || f[i] == 'j':
				size = 8
				i++
				continue
			case f[i] == 'z' || f[i] == 't':
				size = 8
				i++
				continue
			case f[i] == 'w':
				wide = true
				i++
				continue
			case f[i] == 'I':
				if strings.HasPrefix(f[i:], "I64") {
					size = 8
					i += 3
				} else if strings.HasPrefix(f[i:], "I32") {
					size = 4
					i += 3
				} else {
					size = 8
					i++
				}
				continue
			}
			break
		}
		if i >= len(f) {
			break
		}
		conv := f[i]
		var body, prefix string
		numeric := false
		switch conv {
		case '%':
			out.WriteByte('%')
			continue
		case 'd', 'i':
			v := signExtend(args.next(), size)
			numeric = true
			if v < 0 {
				prefix = "-"
				body = strconv.FormatUint(uint64(-v), 10)
			} else {
				if plus {
					prefix = "+"
				} else if space {
					prefix = " "
				}
				body = strconv.FormatUint(uint64(v), 10)
			}
			body = applyIntPrec(body, prec)
		case 'u', 'x', 'X', 'o':
			v := zeroExtend(args.next(), size)
			numeric = true
			base := 10
			switch conv {
			case 'x', 'X':
				base = 16
			case 'o':
				base = 8
			}
			body = strconv.FormatUint(v, base)
			if conv == 'X' {
				body = strings.ToUpper(body)
			}
			body = applyIntPrec(body, prec)
			if hash && v != 0 {
				switch conv {
				case 'x':
					prefix = "0x"
				case 'X':
					prefix = "0X"
				case 'o':
					if !strings.HasPrefix(body, "0") {
						body = "0" + body
					}
				}
			}
		case 'p':
			v := args.next()
			body = strings.ToUpper(strconv.FormatUint(v, 16))
			if len(body) < 16 {
				body = strings.Repeat("0", 16-len(body)) + body
			}
		case 'c', 'C':
			v := args.next()
			if conv == 'C' || wide {
				body = string(rune(uint16(v)))
			} else {
				body = string([]byte{byte(v)})
			}
		case 's', 'S':
			ptr := args.next()
			if ptr == 0 {
				body = "(null)"
			} else {
				max := process.MaxString
				if prec >= 0 {
					max = prec
				}
				var err error
				if conv == 'S' || wide {
					body, err = p.mem.ReadWString(ptr, max)
				} else {
					body, err = p.mem.ReadCString(ptr, max)
				}
				if err != nil && ferr == nil {
					ferr = err
				}
			}
			if prec >= 0 && len(body) > prec {
				body = body[:prec]
			}
		case 'f', 'F', 'e', 'E', 'g', 'G', 'a', 'A':
			v := math.Float64frombits(args.next())
			numeric = true
			if math.Signbit(v) && !math.IsNaN(v) {
				prefix = "-"
				v = -v
			} else if plus {
				prefix = "+"
			} else if space {
				prefix = " "
			}
			body = formatFloat(v, conv, prec, hash, st)
			if math.IsInf(v, 0) || math.IsNaN(v) {
				zero = false
			}
		case 'n':
			args.next()
			continue
		default:
			// Unknown conversion: print it as is, like the CRTs do.
			out.WriteByte('%')
			out.WriteByte(conv)
			continue
		}
		s := prefix + body
		if pad := width - len([]rune(s)); pad > 0 {
			switch {
			case minus:
				s += strings.Repeat(" ", pad)
			case zero && numeric && (prec < 0 || strings.ContainsAny(string(conv), "fFeEgGaA")):
				s = prefix + strings.Repeat("0", pad) + body
			default:
				s = strings.Repeat(" ", pad) + s
			}
		}
		out.WriteString(s)
	}
	if va, ok := args.(*vaList); ok && va.err != nil && ferr == nil {
		ferr = va.err
	}
	return out.String(), ferr
}

func applyIntPrec(body string, prec int) string {
	if prec == 0 && body == "0" {
		return ""
	}
	if prec > len(body) {
		return strings.Repeat("0", prec-len(body)) + body
	}
	return body
}

func signExtend(v uint64, size int) int64 {
	switch size {
	case 1:
		return int64(int8(v))
	case 2:
		return int64(int16(v))
	case 4:
		return int64(int32(v))
	}
	return int64(v)
}

func zeroExtend(v uint64, size int) uint64 {
	switch size {
	case 1:
		return uint64(uint8(v))
	case 2:
		return uint64(uint16(v))
	case 4:
		return uint64(uint32(v))
	}
	return v
}

// formatFloat formats a non-negative v in C style.
func formatFloat(v float64, conv byte, prec int, hash bool, st printfStyle) string {
	upper := conv == 'F' || conv == 'E' || conv == 'G' || conv == 'A'
	if math.IsInf(v, 0) || math.IsNaN(v) {
		s := "inf"
		if math.IsNaN(v) {
			s = "nan"
		}
		if upper {
			s = strings.ToUpper(s)
		}
		return s
	}
	if prec < 0 {
		prec = 6
	}
	var s string
	switch conv {
	case 'f', 'F':
		s = fmtF(v, prec, st)
		if hash && prec == 0 {
			s += "."
		}
	case 'e', 'E':
		s = cExp(v, prec, hash, st.expDigits, st)
	case 'g', 'G':
		if prec == 0 {
			prec = 1
		}
		x := 0
		if v != 0 {
			// exponent after rounding to prec significant digits
			e := cExp(v, prec-1, false, 1, st)
			x, _ = strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
		}
		if prec > x && x >= -4 {
			s = fmtF(v, prec-1-x, st)
		} else {
			s = cExp(v, prec-1, hash, st.expDigits, st)
		}
		if !hash {
			s = trimFloatZeros(s)
		}
	case 'a', 'A':
		s = strconv.FormatFloat(v, 'x', prec, 64)
		s = strings.Replace(s, "p+0", "p+", 1)
		if !strings.HasPrefix(s, "0x") {
			s = "0x" + s
		}
	}
	if upper {
		s = strings.ToUpper(s)
	}
	return s
}

// fmtF formats a non-negative finite v like %.<prec>f.
func fmtF(v float64, prec int, st printfStyle) string {
	if st.roundHalfUp {
		return roundHalfUp(new(big.Float).SetFloat64(v).Text('f', 1100), prec)
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// roundHalfUp rounds an exact decimal string "ddd.ddd" to prec fraction
// digits, ties away from zero.
func roundHalfUp(exact string, prec int) string {
	dot := strings.IndexByte(exact, '.')
	if dot < 0 {
		exact, dot = exact+".", len(exact)
	}
	digits := []byte(exact[:dot] + exact[dot+1:])
	keep := dot + prec
	for len(digits) < keep+1 {
		digits = append(digits, '0')
	}
	up := digits[keep] >= '5'
	digits = digits[:keep]
	if up {
		i := len(digits) - 1
		for ; i >= 0; i-- {
			if digits[i] == '9' {
				digits[i] = '0'
				continue
			}
			digits[i]++
			break
		}
		if i < 0 {
			digits = append([]byte{'1'}, digits...)
		}
	}
	intPart := string(digits[:len(digits)-prec])
	if intPart == "" {
		intPart = "0"
	}
	if prec == 0 {
		return intPart
	}
	return intPart + "." + string(digits[len(digits)-prec:])
}

// cExp formats like %e with at least expDigits exponent digits.
func cExp(v float64, prec int, hash bool, expDigits int, st printfStyle) string {
	s := strconv.FormatFloat(v, 'e', prec, 64)
	if st.roundHalfUp && v != 0 {
		// Scale the exact value to one integer digit, then round half up.
		exact := new(big.Float).SetPrec(4096).SetFloat64(v)
		x := 0
		ten := big.NewFloat(10).SetPrec(4096)
		for i := 0; i < 400 && exact.Cmp(ten) >= 0; i++ {
			exact.Quo(exact, ten)
			x++
		}
		for i := 0; i < 400 && exact.Cmp(big.NewFloat(1)) < 0; i++ {
			exact.Mul(exact, ten)
			x--
		}
		m := roundHalfUp(exact.Text('f', 1200), prec)
		if strings.HasPrefix(m, "10") {
			m = roundHalfUp("1"+strings.Repeat("0", prec+1), prec)
			x++
		}
		sign := "+"
		if x < 0 {
			sign, x = "-", -x
		}
		s = m + "e" + sign + strconv.Itoa(x)
	}
	k := strings.IndexByte(s, 'e')
	mant, exp := s[:k], s[k+1:]
	sign := exp[0]
	digits := exp[1:]
	for len(digits) < expDigits {
		digits = "0" + digits
	}
	if hash && prec == 0 {
		mant += "."
	}
	return mant + "e" + string(sign) + digits
}

// trimFloatZeros removes trailing zeros of the fraction (and the point) for %g.
func trimFloatZeros(s string) string {
	k := strings.IndexByte(s, 'e')
	mant, exp := s, ""
	if k >= 0 {
		mant, exp = s[:k], s[k:]
	}
	if strings.IndexByte(mant, '.') >= 0 {
		mant = strings.TrimRight(mant, "0")
		mant = strings.TrimSuffix(mant, ".")
	}
	return mant + exp
}
