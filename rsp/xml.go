package rsp

import (
	"strconv"
	"strings"
)

// handleqXfer serves "qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH". The
// document is built when a read starts at offset 0 (or names another
// object) and served from the session's buffer in pieces: "m..." while
// more follows, "l..." for the last piece.
func (s *session) handleqXfer(args []byte) error {
	object, rest, ok1 := cut(args, ':')
	op, rest, ok2 := cut(rest, ':')
	if !ok1 || !ok2 {
		return errSyntax
	}
	if !s.f.xferReadable(string(object)) || string(op) != "read" {
		return errUnsupported
	}
	// The annex may itself hold ':' only for objects we do not serve;
	// split at the last ':'.
	i := len(rest) - 1
	for i >= 0 && rest[i] != ':' {
		i--
	}
	if i < 0 {
		return errSyntax
	}
	annex := rest[:i]
	off, length, tail, err := addrLen(rest[i+1:])
	if err != nil || len(tail) != 0 {
		return errSyntax
	}
	key := string(object) + ":" + string(annex)
	if off == 0 || key != s.xferKey {
		doc, err := s.xferDocument(string(object), string(annex))
		if err != nil {
			s.xferKey = ""
			return err
		}
		s.xfer = append(s.xfer[:0], doc...)
		s.xferKey = key
	}
	if off > uint64(len(s.xfer)) {
		return errSyntax
	}
	// Binary data may double when escaped; stay near the packet size.
	length = min(length, uint64(s.c.maxSize/2))
	data := s.xfer[off:]
	last := uint64(len(data)) <= length
	if !last {
		data = data[:length]
	}
	s.start()
	if last {
		s.c.putByte('l')
	} else {
		s.c.putByte('m')
	}
	s.c.putBytes(data)
	return s.end()
}

func (s *session) xferDocument(object, annex string) (string, error) {
	switch object {
	case "features":
		if annex != "target.xml" {
			return "", replyErr(eNOENT, nil)
		}
		return TargetXML(s.desc), nil
	case "threads":
		pid := 0
		if s.multiprocess {
			pid = s.pid
		}
		return threadsXML(s.threadList(), pid), nil
	case "libraries":
		if s.lldb {
			return LLDBLibrariesXML(s.f.libs.Libraries(nil)), nil
		}
		return LibrariesXML(s.f.libs.Libraries(nil)), nil
	case "libraries-svr4":
		if annex != "" {
			// start=/prev= (augmented-libraries-svr4-read) is never
			// advertised.
			return "", errSyntax
		}
		main, libs, err := s.f.svr4.SVR4Libraries(nil)
		if err != nil {
			return "", targetErr(err, eNOENT)
		}
		return SVR4LibrariesXML(main, libs), nil
	case "memory-map":
		return memoryMapXML(s.f.mm.MemoryRegions(nil)), nil
	case "exec-file":
		pid := 0
		if annex != "" {
			v, err := strconv.ParseUint(annex, 16, 31)
			if err != nil {
				return "", errSyntax
			}
			pid = int(v)
		}
		name, err := s.f.exec.ExecFile(pid)
		if err != nil {
			return "", targetErr(err, eNOENT)
		}
		return name, nil
	case "auxv":
		b, err := s.f.auxv.Auxv()
		if err != nil {
			return "", targetErr(err, eNOENT)
		}
		return string(b), nil
	}
	return "", errUnsupported
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func hex0x(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// LibrariesXML is the Windows form of the library list: GDB relocates
// each file by its segment address (image base + RVA of the first
// section).
func LibrariesXML(libs []Library) string {
	var b strings.Builder
	b.WriteString("<library-list>\n")
	for _, l := range libs {
		b.WriteString(`  <library name="`)
		xmlEscaper.WriteString(&b, l.Name)
		b.WriteString(`"><segment address="`)
		b.WriteString(hex0x(l.SegmentAddr))
		b.WriteString(`"/></library>` + "\n")
	}
	b.WriteString("</library-list>\n")
	return b.String()
}

// LLDBLibrariesXML is the library list in the form LLDB 14 reads: it
// takes a library's load address only from a <section address="..."/>
// child (it ignores <segment>), and for a PE file that address is the
// image base (ObjectFilePE slides by address - ImageBase). GDB rejects a
// library with both kinds of child, so each client gets its own form.
// The program is left out (see Library.Program): LLDB has it from
// `target create` and places it with qFileLoadAddress. A library is
// named by its host file when it has one (LLDB on the stub's machine
// opens it, DWARF and all); LLDB reads any other from memory (Process::
// ReadModuleFromMemory: headers, exports and .pdata), which LLDB 14 does
// well for images whose section names are in the section table, and
// crashes on for images with long section names ("/4": a COFF string
// table, which is not mapped), such as Wine's DLLs.
func LLDBLibrariesXML(libs []Library) string {
	var b strings.Builder
	b.WriteString("<library-list>\n")
	for _, l := range libs {
		if l.Program {
			continue
		}
		name := l.Name
		if l.HostPath != "" {
			name = l.HostPath
		}
		b.WriteString(`  <library name="`)
		xmlEscaper.WriteString(&b, name)
		b.WriteString(`"><section address="`)
		b.WriteString(hex0x(l.Base))
		b.WriteString(`"/></library>` + "\n")
	}
	b.WriteString("</library-list>\n")
	return b.String()
}

// SVR4LibrariesXML is an SVR4 library list (GDB manual, "Library List
// Format for SVR4 Targets"): main-lm names the executable's link_map
// entry, which is not listed.
//
//	<library-list-svr4 version="1.0" main-lm="0x...">
//	  <library name="/lib/x86_64-linux-gnu/libc.so.6" lm="0x..." l_addr="0x..." l_ld="0x..." lmid="0x0"/>
//
// lmid is the link-map namespace (0: the default one, the only one the
// r_debug walk sees); GDB 13 requires it.
//
//	</library-list-svr4>
func SVR4LibrariesXML(main uint64, libs []SVR4Library) string {
	var b strings.Builder
	b.WriteString(`<library-list-svr4 version="1.0"`)
	if main != 0 {
		b.WriteString(` main-lm="` + hex0x(main) + `"`)
	}
	b.WriteString(">\n")
	for _, l := range libs {
		b.WriteString(`  <library name="`)
		xmlEscaper.WriteString(&b, l.Name)
		b.WriteString(`" lm="` + hex0x(l.LM) + `" l_addr="` + hex0x(l.Addr) + `" l_ld="` + hex0x(l.Dynamic) + `" lmid="0x0"/>` + "\n")
	}
	b.WriteString("</library-list-svr4>\n")
	return b.String()
}

// threadsXML is the thread list; pid > 0 writes multiprocess ids.
func threadsXML(th []ThreadInfo, pid int) string {
	var b strings.Builder
	b.WriteString("<threads>\n")
	for _, t := range th {
		b.WriteString(`  <thread id="`)
		if pid > 0 {
			b.WriteString("p" + strconv.FormatInt(int64(pid), 16) + ".")
		}
		b.WriteString(strconv.FormatInt(int64(t.ID), 16))
		b.WriteString(`"`)
		if t.Name != "" {
			b.WriteString(` name="`)
			xmlEscaper.WriteString(&b, t.Name)
			b.WriteString(`"`)
		}
		b.WriteString(">")
		xmlEscaper.WriteString(&b, t.Extra)
		b.WriteString("</thread>\n")
	}
	b.WriteString("</threads>\n")
	return b.String()
}

func memoryMapXML(regions []MemoryRegion) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?>` + "\n")
	b.WriteString(`<!DOCTYPE memory-map PUBLIC "+//IDN gnu.org//DTD GDB Memory Map V1.0//EN" "http://sourceware.org/gdb/gdb-memory-map.dtd">` + "\n")
	b.WriteString("<memory-map>\n")
	for _, r := range regions {
		b.WriteString(`  <memory type="ram" start="`)
		b.WriteString(hex0x(r.Start))
		b.WriteString(`" length="`)
		b.WriteString(hex0x(r.Size))
		b.WriteString(`"/>` + "\n")
	}
	b.WriteString("</memory-map>\n")
	return b.String()
}

// Type declarations for the non-predefined types the x86 features use.
// GDB drops a description that names a type it does not know (and falls
// back to i386), so every such type is declared in the feature that first
// uses it, after the types it depends on.
type typeDecl struct {
	deps []string
	text string
}

func flagsDecl(id string, size int, bits []struct {
	name string
	bit  int
}) string {
	var b strings.Builder
	b.WriteString(`  <flags id="` + id + `" size="` + strconv.Itoa(size) + `">` + "\n")
	for _, f := range bits {
		n := strconv.Itoa(f.bit)
		b.WriteString(`    <field name="` + f.name + `" start="` + n + `" end="` + n + `"/>` + "\n")
	}
	b.WriteString("  </flags>\n")
	return b.String()
}

type flagBit = struct {
	name string
	bit  int
}

var knownTypes = map[string]typeDecl{
	// EFLAGS bits (Intel SDM vol. 1, 3.4.3).
	"i386_eflags": {text: flagsDecl("i386_eflags", 4, []flagBit{
		{"CF", 0}, {"PF", 2}, {"AF", 4}, {"ZF", 6}, {"SF", 7}, {"TF", 8},
		{"IF", 9}, {"DF", 10}, {"OF", 11}, {"NT", 14}, {"RF", 16}, {"VM", 17},
		{"AC", 18}, {"VIF", 19}, {"VIP", 20}, {"ID", 21}})},
	// MXCSR bits (Intel SDM vol. 1, 10.2.3).
	"i386_mxcsr": {text: flagsDecl("i386_mxcsr", 4, []flagBit{
		{"IE", 0}, {"DE", 1}, {"ZE", 2}, {"OE", 3}, {"UE", 4}, {"PE", 5},
		{"DAZ", 6}, {"IM", 7}, {"DM", 8}, {"ZM", 9}, {"OM", 10}, {"UM", 11},
		{"PM", 12}, {"FZ", 15}})},
	"v4f":   {text: `  <vector id="v4f" type="ieee_single" count="4"/>` + "\n"},
	"v2d":   {text: `  <vector id="v2d" type="ieee_double" count="2"/>` + "\n"},
	"v16i8": {text: `  <vector id="v16i8" type="int8" count="16"/>` + "\n"},
	"v8i16": {text: `  <vector id="v8i16" type="int16" count="8"/>` + "\n"},
	"v4i32": {text: `  <vector id="v4i32" type="int32" count="4"/>` + "\n"},
	"v2i64": {text: `  <vector id="v2i64" type="int64" count="2"/>` + "\n"},
	"vec128": {
		deps: []string{"v4f", "v2d", "v16i8", "v8i16", "v4i32", "v2i64"},
		text: `  <union id="vec128">
    <field name="v4_float" type="v4f"/>
    <field name="v2_double" type="v2d"/>
    <field name="v16_int8" type="v16i8"/>
    <field name="v8_int16" type="v8i16"/>
    <field name="v4_int32" type="v4i32"/>
    <field name="v2_int64" type="v2i64"/>
    <field name="uint128" type="uint128"/>
  </union>
`},
}

// TargetXML renders d as a single target.xml document: one <feature>
// per distinct Register.Feature, in order of first use, with explicit
// regnum and byte offset, and the attributes LLDB reads (generic,
// dwarf_regnum, ehframe_regnum, encoding, format). GDB ignores the
// attributes it does not know.
func TargetXML(d *Description) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?>` + "\n")
	b.WriteString(`<!DOCTYPE target SYSTEM "gdb-target.dtd">` + "\n")
	b.WriteString(`<target version="1.0">` + "\n")
	if d.Arch != "" {
		b.WriteString("<architecture>" + d.Arch + "</architecture>\n")
	}
	if d.OSABI != "" {
		b.WriteString("<osabi>" + d.OSABI + "</osabi>\n")
	}
	var order []string
	seen := map[string]bool{}
	for _, r := range d.Registers {
		if !seen[r.Feature] {
			seen[r.Feature] = true
			order = append(order, r.Feature)
		}
	}
	declared := map[string]bool{}
	var declare func(b *strings.Builder, t string)
	declare = func(b *strings.Builder, t string) {
		td, ok := knownTypes[t]
		if !ok || declared[t] {
			return
		}
		declared[t] = true
		for _, dep := range td.deps {
			declare(b, dep)
		}
		b.WriteString(td.text)
	}
	for _, feat := range order {
		name := feat
		if name == "" {
			name = "org.rspstub.other"
		}
		b.WriteString(`<feature name="` + name + `">` + "\n")
		for _, r := range d.Registers {
			if r.Feature == feat {
				declare(&b, r.Type)
			}
		}
		for i := range d.Registers {
			r := &d.Registers[i]
			if r.Feature != feat {
				continue
			}
			typ := r.Type
			if typ == "" {
				typ = "int"
			}
			b.WriteString(`  <reg name="` + r.Name + `" bitsize="` + strconv.Itoa(r.Bits) +
				`" type="` + typ + `" regnum="` + strconv.Itoa(i) + `" offset="` + strconv.Itoa(r.Offset) + `"`)
			if r.Group != "" {
				b.WriteString(` group="` + r.Group + `"`)
			}
			enc, format := lldbEncoding(r)
			b.WriteString(` encoding="` + enc + `" format="` + format + `"`)
			if r.DWARF >= 0 {
				n := strconv.Itoa(r.DWARF)
				b.WriteString(` dwarf_regnum="` + n + `" ehframe_regnum="` + n + `"`)
			}
			if r.Generic != "" {
				b.WriteString(` generic="` + r.Generic + `"`)
			}
			if r.AltName != "" {
				b.WriteString(` altname="` + r.AltName + `"`)
			}
			b.WriteString("/>\n")
		}
		b.WriteString("</feature>\n")
	}
	b.WriteString("</target>\n")
	return b.String()
}
