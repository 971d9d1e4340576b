package demangle

import (
	"errors"
	"fmt"
	"strings"
)

// Bounds of the Microsoft decoder.
const (
	MaxName   = 4096 // longer names are not demangled
	maxDepth  = 32   // nested types and template arguments
	maxOutput = 4096 // bytes of output
	maxBack   = 10   // back-reference slots (names and parameter types)
)

// Errors of the Microsoft decoder. Test with errors.Is; *Error carries
// the offset.
var (
	ErrNotMangled  = errors.New("not a mangled name")
	ErrUnsupported = errors.New("unsupported encoding")
	ErrTruncated   = errors.New("name ends early")
	ErrTooDeep     = errors.New("nested too deep")
	ErrTooLong     = errors.New("too long")
	ErrBackRef     = errors.New("back-reference to nothing")
)

// Error is a name the decoder could not read, and where.
type Error struct {
	Offset int
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("offset %d: %v", e.Offset, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// msvc is the decoder's state: a cursor over the name with a sticky
// error, and the back-reference tables.
type msvc struct {
	s     string
	off   int
	err   error
	depth int
	names []string // name back-references
	types []string // parameter type back-references
}

func (d *msvc) fail(err error) {
	if d.err == nil {
		d.err = &Error{Offset: d.off, Err: err}
	}
}

func (d *msvc) peek() byte {
	if d.err != nil || d.off >= len(d.s) {
		return 0
	}
	return d.s[d.off]
}

func (d *msvc) next() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.s) {
		d.fail(ErrTruncated)
		return 0
	}
	c := d.s[d.off]
	d.off++
	return c
}

// consume eats prefix when the name continues with it.
func (d *msvc) consume(prefix string) bool {
	if d.err == nil && strings.HasPrefix(d.s[d.off:], prefix) {
		d.off += len(prefix)
		return true
	}
	return false
}

func (d *msvc) enter() bool {
	d.depth++
	if d.depth > maxDepth {
		d.fail(ErrTooDeep)
		return false
	}
	return d.err == nil
}

func (d *msvc) leave() { d.depth-- }

// MSVC demangles a Microsoft C++ name.
func MSVC(name string) (string, error) {
	if len(name) > MaxName {
		return "", &Error{Offset: 0, Err: ErrTooLong}
	}
	if len(name) < 2 || name[0] != '?' {
		return "", &Error{Offset: 0, Err: ErrNotMangled}
	}
	d := &msvc{s: name, off: 1}
	out := d.symbol()
	if d.err == nil && d.off != len(d.s) {
		d.fail(fmt.Errorf("%w: %q after the name", ErrUnsupported, d.s[d.off:]))
	}
	if d.err == nil && len(out) > maxOutput {
		d.fail(ErrTooLong)
	}
	if d.err != nil {
		return "", d.err
	}
	return out, nil
}

// symbol reads what follows the leading '?': a qualified name, then a
// function or variable encoding.
func (d *msvc) symbol() string {
	var special string // an operator name, or "ctor"/"dtor" with their class
	var ctor, dtor, template bool
	var first string
	switch {
	case d.consume("?$"):
		first, template = d.templateName(), true
	case d.peek() == '?':
		d.off++
		special, ctor, dtor = d.specialName()
	default:
		first = d.simpleName()
	}
	scopes := d.scopes()
	if d.err != nil {
		return ""
	}
	qual := strings.Join(scopes, "::")
	var name string
	switch {
	case ctor || dtor:
		if len(scopes) == 0 {
			d.fail(fmt.Errorf("%w: constructor without a class", ErrUnsupported))
			return ""
		}
		class := scopes[len(scopes)-1]
		if i := strings.IndexByte(class, '<'); i > 0 {
			class = class[:i]
		}
		if dtor {
			class = "~" + class
		}
		name = qual + "::" + class
	case special != "":
		name = special
		if qual != "" {
			name = qual + "::" + special
		}
	default:
		name = first
		if qual != "" {
			name = qual + "::" + first
		}
	}
	return d.encoding(name, template)
}

// scopes reads the enclosing scopes, innermost first, up to the '@'
// that ends the qualified name, and returns them outermost first.
func (d *msvc) scopes() []string {
	var sc []string
	for i := 0; d.err == nil; i++ {
		if i > maxDepth {
			d.fail(ErrTooDeep)
			return nil
		}
		if d.consume("@") {
			break
		}
		var n string
		switch {
		case d.consume("?$"):
			n = d.templateName()
		case d.peek() == '?':
			// An anonymous or numbered scope: ?A0x1234@ or ?1?? (a local
			// scope number).
			d.off++
			if d.consume("A") {
				d.untilAt()
				n = "`anonymous namespace'"
			} else {
				v := d.number()
				n = fmt.Sprintf("`%d'", v)
			}
		default:
			n = d.simpleName()
		}
		sc = append(sc, n)
	}
	for i, j := 0, len(sc)-1; i < j; i, j = i+1, j-1 {
		sc[i], sc[j] = sc[j], sc[i]
	}
	return sc
}

// simpleName reads a name ending in '@', or a back-reference digit.
func (d *msvc) simpleName() string {
	c := d.peek()
	if c >= '0' && c <= '9' {
		d.off++
		i := int(c - '0')
		if i >= len(d.names) {
			d.fail(ErrBackRef)
			return ""
		}
		return d.names[i]
	}
	n := d.untilAt()
	if n == "" {
		d.fail(fmt.Errorf("%w: empty name", ErrUnsupported))
		return ""
	}
	d.remember(&d.names, n)
	return n
}

func (d *msvc) untilAt() string {
	if d.err != nil {
		return ""
	}
	i := strings.IndexByte(d.s[d.off:], '@')
	if i < 0 {
		d.fail(ErrTruncated)
		return ""
	}
	n := d.s[d.off : d.off+i]
	d.off += i + 1
	for j := 0; j < len(n); j++ {
		if c := n[j]; !(c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			d.fail(fmt.Errorf("%w: %q in a name", ErrUnsupported, c))
			return ""
		}
	}
	return n
}

func (d *msvc) remember(table *[]string, n string) {
	if len(*table) < maxBack {
		*table = append(*table, n)
	}
}

// templateName reads name@args@ after "?$". Its back-references are its
// own: the arguments start with fresh tables.
func (d *msvc) templateName() string {
	if !d.enter() {
		return ""
	}
	defer d.leave()
	savedNames, savedTypes := d.names, d.types
	d.names, d.types = nil, nil
	var base string
	if d.peek() == '?' {
		d.off++
		base, _, _ = d.specialName()
	} else {
		base = d.untilAt()
		d.names = append(d.names, base)
	}
	var args []string
	for i := 0; d.err == nil && !d.consume("@"); i++ {
		if i > maxDepth {
			d.fail(ErrTooDeep)
			break
		}
		args = append(args, d.templateArg())
	}
	d.names, d.types = savedNames, savedTypes
	n := base + "<" + strings.Join(args, ",") + ">"
	d.remember(&d.names, n)
	return n
}

func (d *msvc) templateArg() string {
	switch {
	case d.consume("$0"):
		return fmt.Sprint(d.signed())
	case d.consume("$$V"), d.consume("$$Z"):
		return "" // an empty pack
	}
	return d.typ(true)
}

// number reads an encoded unsigned number: a digit 0-9 for 1-10, or hex
// digits A-P ending in '@'.
func (d *msvc) number() uint64 {
	c := d.next()
	if c >= '0' && c <= '9' {
		return uint64(c-'0') + 1
	}
	var v uint64
	for i := 0; d.err == nil; i++ {
		if c == '@' {
			return v
		}
		if c < 'A' || c > 'P' || i >= 16 {
			d.fail(fmt.Errorf("%w: number", ErrUnsupported))
			return 0
		}
		v = v<<4 | uint64(c-'A')
		c = d.next()
	}
	return 0
}

func (d *msvc) signed() int64 {
	neg := d.consume("?")
	v := int64(d.number())
	if neg {
		return -v
	}
	return v
}

// operator names after "??".
var operators = map[string]string{
	"2": "operator new", "3": "operator delete", "4": "operator=", "5": "operator>>", "6": "operator<<",
	"7": "operator!", "8": "operator==", "9": "operator!=", "A": "operator[]", "C": "operator->",
	"D": "operator*", "E": "operator++", "F": "operator--", "G": "operator-", "H": "operator+",
	"I": "operator&", "J": "operator->*", "K": "operator/", "L": "operator%", "M": "operator<",
	"N": "operator<=", "O": "operator>", "P": "operator>=", "Q": "operator,", "R": "operator()",
	"S": "operator~", "T": "operator^", "U": "operator|", "V": "operator&&", "W": "operator||",
	"X": "operator*=", "Y": "operator+=", "Z": "operator-=",
	"_0": "operator/=", "_1": "operator%=", "_2": "operator>>=", "_3": "operator<<=", "_4": "operator&=",
	"_5": "operator|=", "_6": "operator^=", "_7": "`vftable'", "_8": "`vbtable'",
	"_E": "`vector deleting destructor'", "_G": "`scalar deleting destructor'",
	"_U": "operator new[]", "_V": "operator delete[]",
}

// specialName reads the code after "??" (or "?$?"): a constructor, a
// destructor or an operator.
func (d *msvc) specialName() (name string, ctor, dtor bool) {
	switch {
	case d.consume("0"):
		return "", true, false
	case d.consume("1"):
		return "", false, true
	case d.consume("B"):
		return "operator `conversion'", false, false
	}
	code := string(d.next())
	if code == "_" {
		code += string(d.next())
	}
	if op, ok := operators[code]; ok && d.err == nil {
		return op, false, false
	}
	d.fail(fmt.Errorf("%w: special name ??%s", ErrUnsupported, code))
	return "", false, false
}

// encoding reads what follows the qualified name: a function's type or
// a variable's.
func (d *msvc) encoding(name string, template bool) string {
	c := d.next()
	switch {
	case c >= '0' && c <= '4': // variables: static members, globals
		t := d.typ(false)
		d.consume("E") // a __ptr64 pointer variable
		d.cvClass()    // undname does not show it either
		if d.err != nil {
			return ""
		}
		return t + " " + name
	case c == 'Y' || c == 'Z': // a free function
		return d.function(name, false, template)
	case strings.IndexByte("ABEFIJMNQRUV", c) >= 0: // member functions (virtual or not)
		return d.function(name, true, template)
	case strings.IndexByte("CDKLST", c) >= 0: // static member functions
		return d.function(name, false, template)
	}
	d.fail(fmt.Errorf("%w: encoding %q", ErrUnsupported, c))
	return ""
}

// function reads [this qualifiers] calling-convention return params throw.
func (d *msvc) function(name string, member, template bool) string {
	var thisCV string
	if member {
		d.consume("E") // __ptr64
		d.consume("I") // __restrict
		switch d.next() {
		case 'A':
		case 'B':
			thisCV = " const"
		case 'C':
			thisCV = " volatile"
		case 'D':
			thisCV = " const volatile"
		default:
			d.fail(fmt.Errorf("%w: this qualifier", ErrUnsupported))
			return ""
		}
	}
	d.callingConvention()
	var ret string
	if !d.consume("@") { // constructors and destructors return nothing
		if d.consume("?") {
			d.cvClass() // a cv-qualified class returned by value
		}
		ret = d.typ(false)
	}
	params := d.params()
	d.throwSpec()
	if d.err != nil {
		return ""
	}
	out := name + "(" + params + ")" + thisCV
	if template && ret != "" {
		out = ret + " " + out
	}
	return out
}

func (d *msvc) callingConvention() {
	switch d.next() {
	case 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'Q':
	default:
		d.fail(fmt.Errorf("%w: calling convention", ErrUnsupported))
	}
}

// params reads a parameter list: 'X' (void), or types ending in '@' or
// 'Z' (ellipsis).
func (d *msvc) params() string {
	if d.consume("X") {
		return ""
	}
	var ps []string
	for i := 0; d.err == nil; i++ {
		if i > 64 {
			d.fail(ErrTooLong)
			return ""
		}
		if d.consume("@") {
			break
		}
		if d.consume("Z") {
			ps = append(ps, "...")
			break
		}
		ps = append(ps, d.typ(true))
	}
	return strings.Join(ps, ",")
}

func (d *msvc) throwSpec() {
	if d.consume("Z") {
		return
	}
	if d.consume("_E") { // noexcept
		return
	}
	d.fail(fmt.Errorf("%w: throw specification", ErrUnsupported))
}

var builtins = map[byte]string{
	'X': "void", 'C': "signed char", 'D': "char", 'E': "unsigned char", 'F': "short",
	'G': "unsigned short", 'H': "int", 'I': "unsigned int", 'J': "long", 'K': "unsigned long",
	'M': "float", 'N': "double", 'O': "long double",
}

var extended = map[byte]string{
	'N': "bool", 'J': "__int64", 'K': "unsigned __int64", 'W': "wchar_t", 'S': "char16_t",
	'U': "char32_t", 'Q': "char8_t", 'T': "long double",
}

// typ reads a type. param says it is a function parameter or template
// argument, whose types of more than one character are remembered for
// digit back-references.
func (d *msvc) typ(param bool) string {
	if !d.enter() {
		return ""
	}
	defer d.leave()
	start := d.off
	c := d.peek()
	if param && c >= '0' && c <= '9' {
		d.off++
		i := int(c - '0')
		if i >= len(d.types) {
			d.fail(ErrBackRef)
			return ""
		}
		return d.types[i]
	}
	t := d.typ1()
	if param && d.err == nil && d.off-start > 1 {
		d.remember(&d.types, t)
	}
	return t
}

func (d *msvc) typ1() string {
	c := d.next()
	if t, ok := builtins[c]; ok {
		return t
	}
	switch c {
	case '_':
		e := d.next()
		if t, ok := extended[e]; ok {
			return t
		}
		d.fail(fmt.Errorf("%w: type _%c", ErrUnsupported, e))
	case 'P', 'Q', 'R', 'S':
		if d.consume("6") { // a function pointer
			d.callingConvention()
			ret := d.typ(false)
			ps := d.params()
			d.throwSpec()
			return ret + " (*)(" + ps + ")"
		}
		return d.pointee("*")
	case 'A', 'B':
		return d.pointee("&")
	case 'T', 'U', 'V':
		return d.className()
	case 'W':
		if d.next() != '4' {
			d.fail(fmt.Errorf("%w: enum size", ErrUnsupported))
			return ""
		}
		return d.className()
	case '$':
		switch {
		case d.consume("$Q"):
			return d.pointee("&&")
		case d.consume("$T"):
			return "std::nullptr_t"
		case d.consume("$A6"): // a function type (template argument)
			d.callingConvention()
			ret := d.typ(false)
			ps := d.params()
			d.throwSpec()
			return ret + "(" + ps + ")"
		case d.consume("$B"):
			return d.typ(false)
		}
		d.fail(fmt.Errorf("%w: type $", ErrUnsupported))
	case '?':
		d.cvClass()
		return d.typ(false)
	default:
		d.fail(fmt.Errorf("%w: type %q", ErrUnsupported, c))
	}
	return ""
}

// pointee reads a pointer's or reference's qualifiers and target.
func (d *msvc) pointee(sym string) string {
	d.consume("E") // __ptr64
	d.consume("I") // __restrict
	cv := d.cvClass()
	t := d.typ(false)
	if cv != "" {
		return t + " " + cv + sym
	}
	return t + sym
}

// cvClass reads a storage class letter: A none, B const, C volatile, D
// const volatile.
func (d *msvc) cvClass() string {
	switch d.next() {
	case 'A':
		return ""
	case 'B':
		return "const"
	case 'C':
		return "volatile"
	case 'D':
		return "const volatile"
	}
	d.fail(fmt.Errorf("%w: storage class", ErrUnsupported))
	return ""
}

// className reads a qualified class name: its own name, then scopes.
func (d *msvc) className() string {
	var n string
	if d.consume("?$") {
		n = d.templateName()
	} else {
		n = d.simpleName()
	}
	sc := d.scopes()
	if len(sc) > 0 {
		return strings.Join(sc, "::") + "::" + n
	}
	return n
}
