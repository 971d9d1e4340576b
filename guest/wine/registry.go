package wine

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/rspstub/rspstub/guest/process"
)

// The registry is an in-memory tree under \Registry (Machine and User),
// seeded with the keys a fresh Windows install has that console programs
// and Wine's DLLs read, and optionally loaded from a .reg file. Nothing is
// written back to the host.

const (
	REG_NONE      = 0
	REG_SZ        = 1
	REG_EXPAND_SZ = 2
	REG_BINARY    = 3
	REG_DWORD     = 4
	REG_MULTI_SZ  = 7
	REG_QWORD     = 11

	maxRegKeys   = 1 << 16
	maxRegValues = 1 << 12 // per key
	maxRegData   = 1 << 20
)

type regValue struct {
	name string
	typ  uint32
	data []byte
}

type regKey struct {
	name     string
	parent   *regKey
	subs     map[string]*regKey // lower-case name -> key
	values   []*regValue
	class    string
	deleted  bool
	modified int64
}

type registry struct {
	root  *regKey // \Registry
	count int
}

func newRegistry() *registry {
	r := &registry{root: &regKey{name: "REGISTRY", subs: map[string]*regKey{}}}
	r.seed()
	return r
}

// path is the key's full NT name.
func (k *regKey) path() string {
	var parts []string
	for n := k; n != nil; n = n.parent {
		parts = append(parts, n.name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return `\` + strings.Join(parts, `\`)
}

// sortedSubs lists subkeys in name order (Windows enumerates them so).
func (k *regKey) sortedSubs() []*regKey {
	out := make([]*regKey, 0, len(k.subs))
	for _, s := range k.subs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToUpper(out[i].name) < strings.ToUpper(out[j].name) })
	return out
}

func (k *regKey) value(name string) *regValue {
	for _, v := range k.values {
		if strings.EqualFold(v.name, name) {
			return v
		}
	}
	return nil
}

func (k *regKey) setValue(name string, typ uint32, data []byte) bool {
	if v := k.value(name); v != nil {
		v.typ, v.data = typ, data
		return true
	}
	if len(k.values) >= maxRegValues {
		return false
	}
	k.values = append(k.values, &regValue{name: name, typ: typ, data: data})
	return true
}

// splitKeyPath splits a key path into components.
func splitKeyPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, `\`) {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// lookup finds the key at path below from (the root when nil).
func (r *registry) lookup(from *regKey, path string) *regKey {
	k := from
	comps := splitKeyPath(path)
	if k == nil {
		k = r.root
		if len(comps) == 0 || !strings.EqualFold(comps[0], "registry") {
			return nil
		}
		comps = comps[1:]
	}
	for _, c := range comps {
		k = k.subs[strings.ToLower(c)]
		if k == nil || k.deleted {
			return nil
		}
	}
	return k
}

// create makes the key at path (and its parents); created reports a new
// leaf.
func (r *registry) create(from *regKey, path string) (k *regKey, created bool, st ntstatus) {
	k = from
	comps := splitKeyPath(path)
	if k == nil {
		k = r.root
		if len(comps) == 0 || !strings.EqualFold(comps[0], "registry") {
			return nil, false, STATUS_OBJECT_PATH_SYNTAX_BAD
		}
		comps = comps[1:]
	}
	for i, c := range comps {
		if len(c) > 255 {
			return nil, false, STATUS_INVALID_PARAMETER
		}
		next := k.subs[strings.ToLower(c)]
		if next == nil || next.deleted {
			if r.count >= maxRegKeys {
				return nil, false, STATUS_INSUFFICIENT_RESOURCES
			}
			next = &regKey{name: c, parent: k, subs: map[string]*regKey{}}
			k.subs[strings.ToLower(c)] = next
			r.count++
			if i == len(comps)-1 {
				created = true
			}
		}
		k = next
	}
	return k, created, STATUS_SUCCESS
}

func regSZ(s string) []byte { return process.UTF16Bytes(s, true) }

func regDword(v uint32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	return b
}

// seed creates the keys of a fresh install that programs commonly read.
func (r *registry) seed() {
	set := func(path, name string, typ uint32, data []byte) {
		k, _, _ := r.create(nil, path)
		k.setValue(name, typ, data)
	}
	mkkey := func(path string) { r.create(nil, path) }
	const hklm = `\Registry\Machine`
	hkcu := `\Registry\User\` + UserSIDString
	cv := hklm + `\Software\Microsoft\Windows NT\CurrentVersion`
	// As a fresh Wine 8 prefix has them (Windows 7 SP1), so that programs
	// report the same version under rspstub as under wine.
	set(cv, "CSDVersion", REG_SZ, regSZ("Service Pack 1"))
	set(cv, "CurrentBuild", REG_SZ, regSZ("7601"))
	set(cv, "CurrentBuildNumber", REG_SZ, regSZ("7601"))
	set(cv, "CurrentType", REG_SZ, regSZ("Uniprocessor Free"))
	set(cv, "CurrentVersion", REG_SZ, regSZ("6.1"))
	set(cv, "ProductId", REG_SZ, regSZ("12345-oem-0000001-54321"))
	set(cv, "ProductName", REG_SZ, regSZ("Microsoft Windows 7"))
	set(cv, "RegisteredOrganization", REG_SZ, regSZ(""))
	set(cv, "RegisteredOwner", REG_SZ, regSZ(""))
	set(cv, "SystemRoot", REG_SZ, regSZ(`C:\windows`))
	win := hklm + `\Software\Microsoft\Windows\CurrentVersion`
	set(win, "ProgramFilesDir", REG_SZ, regSZ(`C:\Program Files`))
	set(win, "CommonFilesDir", REG_SZ, regSZ(`C:\Program Files\Common Files`))
	set(win, "ProgramW6432Dir", REG_SZ, regSZ(`C:\Program Files`))
	ctl := hklm + `\System\CurrentControlSet\Control`
	set(ctl+`\ComputerName\ComputerName`, "ComputerName", REG_SZ, regSZ(guestComputer))
	set(ctl+`\ComputerName\ActiveComputerName`, "ComputerName", REG_SZ, regSZ(guestComputer))
	set(ctl+`\Nls\CodePage`, "ACP", REG_SZ, regSZ("1252"))
	set(ctl+`\Nls\CodePage`, "OEMCP", REG_SZ, regSZ("437"))
	set(ctl+`\Nls\CodePage`, "MACCP", REG_SZ, regSZ("10000"))
	set(ctl+`\Nls\Language`, "Default", REG_SZ, regSZ("0409"))
	set(ctl+`\Nls\Language`, "InstallLanguage", REG_SZ, regSZ("0409"))
	set(ctl+`\TimeZoneInformation`, "TimeZoneKeyName", REG_SZ, regSZ("UTC"))
	set(ctl+`\Windows`, "CSDVersion", REG_DWORD, regDword(0x100))
	env := ctl + `\Session Manager\Environment`
	for _, kv := range DefaultEnv() {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "COMSPEC", "NUMBER_OF_PROCESSORS", "OS", "PATH", "PATHEXT", "PROCESSOR_ARCHITECTURE", "TEMP", "TMP", "WINDIR":
			set(env, k, REG_EXPAND_SZ, regSZ(v))
		}
	}
	cpu := hklm + `\Hardware\Description\System\CentralProcessor\0`
	set(cpu, "~MHz", REG_DWORD, regDword(2000))
	set(cpu, "Identifier", REG_SZ, regSZ("Intel64 Family 6 Model 15 Stepping 1"))
	set(cpu, "ProcessorNameString", REG_SZ, regSZ("QEMU Virtual CPU (rspstub)"))
	set(cpu, "VendorIdentifier", REG_SZ, regSZ("GenuineIntel"))
	mkkey(hklm + `\Software\Classes`)
	set(hkcu+`\Environment`, "TEMP", REG_EXPAND_SZ, regSZ(`C:\users\`+guestUser+`\AppData\Local\Temp`))
	set(hkcu+`\Environment`, "TMP", REG_EXPAND_SZ, regSZ(`C:\users\`+guestUser+`\AppData\Local\Temp`))
	intl := hkcu + `\Control Panel\International`
	set(intl, "Locale", REG_SZ, regSZ("00000409"))
	set(intl, "LocaleName", REG_SZ, regSZ("en-US"))
	mkkey(hkcu + `\Software`)
	sf := hkcu + `\Software\Microsoft\Windows\CurrentVersion\Explorer\Shell Folders`
	set(sf, "AppData", REG_SZ, regSZ(`C:\users\`+guestUser+`\AppData\Roaming`))
	set(sf, "Local AppData", REG_SZ, regSZ(`C:\users\`+guestUser+`\AppData\Local`))
	mkkey(`\Registry\User\.Default`)
}

// hiveRoots maps .reg file root names to NT paths.
var hiveRoots = map[string]string{
	"HKEY_LOCAL_MACHINE": `\Registry\Machine`,
	"HKLM":               `\Registry\Machine`,
	"HKEY_CURRENT_USER":  `\Registry\User\` + UserSIDString,
	"HKCU":               `\Registry\User\` + UserSIDString,
	"HKEY_USERS":         `\Registry\User`,
	"HKEY_CLASSES_ROOT":  `\Registry\Machine\Software\Classes`,
	"HKCR":               `\Registry\Machine\Software\Classes`,
}

// LoadRegFile merges a registry file into the registry: a .reg file
// (REGEDIT4 or "Windows Registry Editor Version 5.00", UTF-8 or
// UTF-16LE), or one of a Wine prefix's own (system.reg, user.reg,
// userdef.reg: "WINE REGISTRY Version 2"), whose keys go under the hive
// the file names (its ";; All keys relative to" line). A folder is taken
// for a Wine prefix: its system.reg, user.reg and userdef.reg.
func (p *Process) LoadRegFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return p.reg.loadFile(path)
	}
	n := 0
	for _, f := range []string{"system.reg", "userdef.reg", "user.reg"} {
		err := p.reg.loadFile(filepath.Join(path, f))
		switch {
		case err == nil:
			n++
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no system.reg, user.reg or userdef.reg (not a Wine prefix)", path)
	}
	return nil
}

func (r *registry) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(data) > 64<<20 {
		return fmt.Errorf("%s: larger than 64 MiB", path)
	}
	if len(data) >= 2 && data[0] == 0xff && data[1] == 0xfe {
		data = []byte(process.DecodeUTF16(data[2:]))
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	return r.load(string(data), path)
}

func (r *registry) load(text, name string) error {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var key *regKey
	lineNo := 0
	pending := ""
	// A Wine registry file: its keys are relative to wineRoot, written
	// with C escapes and followed by a timestamp; '#' lines are metadata.
	wine := strings.HasPrefix(text, "WINE REGISTRY Version 2")
	wineRoot := `\Registry\Machine`
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if wine && pending == "" {
			t := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(t, ";; All keys relative to "):
				rel := unescapeWine(strings.TrimPrefix(t, ";; All keys relative to "))
				switch up := strings.ToUpper(rel); {
				case up == `REGISTRY\MACHINE`:
					wineRoot = `\Registry\Machine`
				case strings.HasPrefix(up, `REGISTRY\USER\.DEFAULT`):
					wineRoot = `\Registry\User\.Default`
				case strings.HasPrefix(up, `REGISTRY\USER\`):
					wineRoot = hiveRoots["HKEY_CURRENT_USER"] // the prefix's user is ours
				default:
					return fmt.Errorf("%s:%d: unknown registry root %q", name, lineNo, rel)
				}
				continue
			case strings.HasPrefix(t, "WINE REGISTRY") || strings.HasPrefix(t, "#"):
				continue
			case strings.HasPrefix(t, "["):
				end := strings.LastIndexByte(t, ']')
				if end < 0 {
					return fmt.Errorf("%s:%d: unterminated key name", name, lineNo)
				}
				full := wineRoot + `\` + unescapeWine(t[1:end])
				var st ntstatus
				if key, _, st = r.create(nil, full); st != STATUS_SUCCESS {
					return fmt.Errorf("%s:%d: cannot create %s: %v", name, lineNo, full, st)
				}
				continue
			}
		}
		if pending != "" {
			line = pending + strings.TrimLeft(line, " \t")
			pending = ""
		}
		// Only hex data continues on the next line ("C:\\" ends a string).
		if strings.HasSuffix(line, `\`) && strings.Contains(strings.ToLower(line), "=hex") {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "" || strings.HasPrefix(t, ";") || strings.HasPrefix(t, "REGEDIT4") || strings.HasPrefix(t, "Windows Registry Editor"):
			continue
		case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]"):
			path := t[1 : len(t)-1]
			del := strings.HasPrefix(path, "-")
			path = strings.TrimPrefix(path, "-")
			root, rest, _ := strings.Cut(path, `\`)
			nt, ok := hiveRoots[strings.ToUpper(root)]
			if !ok {
				return fmt.Errorf("%s:%d: unknown root key %q", name, lineNo, root)
			}
			full := nt
			if rest != "" {
				full += `\` + rest
			}
			if del {
				if k := r.lookup(nil, full); k != nil {
					k.deleted = true
				}
				key = nil
				continue
			}
			var st ntstatus
			if key, _, st = r.create(nil, full); st != STATUS_SUCCESS {
				return fmt.Errorf("%s:%d: cannot create %s: %v", name, lineNo, full, st)
			}
		default:
			if key == nil {
				return fmt.Errorf("%s:%d: value outside a key", name, lineNo)
			}
			vname, rest, err := parseRegName(t)
			if err != nil {
				return fmt.Errorf("%s:%d: %v", name, lineNo, err)
			}
			typ, data, err := parseRegData(rest, wine)
			if err != nil {
				return fmt.Errorf("%s:%d: %v", name, lineNo, err)
			}
			if typ == ^uint32(0) {
				for i, v := range key.values {
					if strings.EqualFold(v.name, vname) {
						key.values = append(key.values[:i], key.values[i+1:]...)
						break
					}
				}
				continue
			}
			if !key.setValue(vname, typ, data) {
				return fmt.Errorf("%s:%d: too many values in one key", name, lineNo)
			}
		}
	}
	return sc.Err()
}

// parseRegName reads `@=` or `"name"=` and returns the rest after `=`.
func parseRegName(t string) (string, string, error) {
	if strings.HasPrefix(t, "@=") {
		return "", t[2:], nil
	}
	if !strings.HasPrefix(t, `"`) {
		return "", "", fmt.Errorf("expected a quoted value name: %q", t)
	}
	var b strings.Builder
	for i := 1; i < len(t); i++ {
		switch t[i] {
		case '\\':
			if i+1 < len(t) {
				i++
				b.WriteByte(t[i])
			}
		case '"':
			rest := strings.TrimSpace(t[i+1:])
			if !strings.HasPrefix(rest, "=") {
				return "", "", fmt.Errorf("expected = after the value name")
			}
			return b.String(), strings.TrimSpace(rest[1:]), nil
		default:
			b.WriteByte(t[i])
		}
	}
	return "", "", fmt.Errorf("unterminated value name")
}

// parseRegData reads a value: "string", dword:xxxxxxxx, hex:.., hex(N):..,
// or - (delete: type ^0); in a Wine registry file (wine) also
// str(N):"string", and strings take C escapes.
func parseRegData(s string, wine bool) (uint32, []byte, error) {
	typ := uint32(REG_SZ)
	if wine && strings.HasPrefix(s, "str(") {
		end := strings.IndexByte(s, ')')
		if end < 0 || !strings.HasPrefix(s[end+1:], ":") {
			return 0, nil, fmt.Errorf("bad string type")
		}
		v, err := strconv.ParseUint(s[4:end], 16, 32)
		if err != nil {
			return 0, nil, fmt.Errorf("bad string type: %v", err)
		}
		typ, s = uint32(v), s[end+2:]
	}
	switch {
	case s == "-":
		return ^uint32(0), nil, nil
	case strings.HasPrefix(s, `"`):
		if !strings.HasSuffix(s, `"`) || len(s) < 2 {
			return 0, nil, fmt.Errorf("unterminated string")
		}
		var v string
		if wine {
			v = unescapeWine(s[1 : len(s)-1])
		} else {
			v = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(s[1 : len(s)-1])
		}
		// REG_MULTI_SZ's strings come NUL-separated ("a\0b\0"); the
		// terminating NUL regSZ adds ends the list.
		return typ, regSZ(v), nil
	case strings.HasPrefix(strings.ToLower(s), "dword:"):
		v, err := strconv.ParseUint(strings.TrimSpace(s[6:]), 16, 32)
		if err != nil {
			return 0, nil, fmt.Errorf("bad dword: %v", err)
		}
		return REG_DWORD, regDword(uint32(v)), nil
	case strings.HasPrefix(strings.ToLower(s), "hex"):
		typ := uint32(REG_BINARY)
		rest := s[3:]
		if strings.HasPrefix(rest, "(") {
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return 0, nil, fmt.Errorf("bad hex type")
			}
			v, err := strconv.ParseUint(rest[1:end], 16, 32)
			if err != nil {
				return 0, nil, fmt.Errorf("bad hex type: %v", err)
			}
			typ = uint32(v)
			rest = rest[end+1:]
		}
		if !strings.HasPrefix(rest, ":") {
			return 0, nil, fmt.Errorf("expected : after hex")
		}
		digits := strings.NewReplacer(",", "", " ", "", "\t", "").Replace(rest[1:])
		data, err := hex.DecodeString(digits)
		if err != nil {
			return 0, nil, fmt.Errorf("bad hex data: %v", err)
		}
		if len(data) > maxRegData {
			return 0, nil, fmt.Errorf("value larger than %d bytes", maxRegData)
		}
		return typ, data, nil
	}
	return 0, nil, fmt.Errorf("unknown value format %q", s)
}

var _ = utf16.Encode

// unescapeWine undoes the escapes of a Wine registry file's strings and
// key names: \\ and \", the C letters (\n, \t...), \xHHHH (up to four hex
// digits) and octal \NNN.
func unescapeWine(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'e':
			b.WriteByte(0x1b)
		case 'f':
			b.WriteByte(0xc)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte(0xb)
		case 'x':
			j := i + 1
			for j < len(s) && j < i+5 && isHex(s[j]) {
				j++
			}
			if v, err := strconv.ParseUint(s[i+1:j], 16, 32); err == nil && j > i+1 {
				b.WriteRune(rune(v))
				i = j - 1
			} else {
				b.WriteByte('x')
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(s[i:j], 8, 32)
			b.WriteRune(rune(v))
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
