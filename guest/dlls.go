package guest

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// apiFunc implements one exported function of a synthesized DLL.
type apiFunc func(c *call) error

// apiExport is one line of a synthesized DLL's export table: the export's
// name, its arity and its handler. The arity is the number of arguments
// of the function's prototype in the Windows headers, each one integer or
// pointer slot of the x64 convention (RCX, RDX, R8, R9, then the stack);
// for a variadic function, the arguments before the "...". A handler reads
// no argument beyond it (TestExportArity checks both against the handlers'
// code and mingw-w64's headers), and the debug log of each call shows
// that many arguments.
type apiExport struct {
	name  string
	arity int
	fn    apiFunc
}

// maxArity bounds an export's arguments (CreateProcessW has 10).
const maxArity = 16

// exportMap indexes an export table by name. Later lines win over earlier
// ones of the same name, which must have the same arity: a table that
// breaks that, or gives an arity out of range, is a bug found when the
// package initializes.
func exportMap(table []apiExport) map[string]apiExport {
	m := make(map[string]apiExport, len(table))
	for _, e := range table {
		if e.arity < 0 || e.arity > maxArity || e.fn == nil {
			panic(fmt.Sprintf("export table: %s has arity %d (0 to %d) or no handler", e.name, e.arity, maxArity))
		}
		if old, ok := m[e.name]; ok && old.arity != e.arity {
			panic(fmt.Sprintf("export table: %s listed with arity %d and %d", e.name, old.arity, e.arity))
		}
		m[e.name] = e
	}
	return m
}

// Arity returns the number of arguments of the Win32 or C runtime
// function name has in the export tables (its prototype's, the same in
// every userland), and whether the tables list it.
func Arity(name string) (int, bool) {
	for _, k := range []*dllKind{kernel32Kind, ntdllKind, msvcrtKind, vcruntimeKind} {
		if e, ok := k.handlers[name]; ok {
			return e.arity, true
		}
	}
	return 0, false
}

// dllKind describes a synthesized system DLL.
type dllKind struct {
	canon     string // name shown in loader lists and reports
	handlers  map[string]apiExport
	code      []codeFunc
	data      []dataExport
	slots     []string
	forwardTo string // API sets: every export forwards to this DLL
	init      func(p *Process, m *module) error
}

func (k *dllKind) displayName(lname string) string {
	if k.canon != "" {
		return k.canon
	}
	return lname
}

func (k *dllKind) isCodeOrData(n string) bool {
	for _, c := range k.code {
		if c.name == n {
			return true
		}
	}
	for _, d := range k.data {
		if d.name == n && d.export {
			return true
		}
	}
	return false
}

var (
	ntdllKind, kernel32Kind, kernelbaseKind, msvcrtKind, ucrtKind, vcruntimeKind *dllKind
)

// otherSystemDLLs are synthesized with stubs only: calling any of their
// functions reports it as unimplemented.
var otherSystemDLLs = map[string]string{
	"user32.dll": "USER32.dll", "advapi32.dll": "ADVAPI32.dll", "gdi32.dll": "GDI32.dll",
	"shell32.dll": "SHELL32.dll", "ole32.dll": "ole32.dll", "oleaut32.dll": "OLEAUT32.dll",
	"ws2_32.dll": "WS2_32.dll", "shlwapi.dll": "SHLWAPI.dll", "version.dll": "VERSION.dll",
	"bcrypt.dll": "bcrypt.dll", "crypt32.dll": "CRYPT32.dll", "comctl32.dll": "COMCTL32.dll",
	"winmm.dll": "WINMM.dll", "psapi.dll": "PSAPI.DLL", "dbghelp.dll": "dbghelp.dll",
	"userenv.dll": "USERENV.dll", "secur32.dll": "Secur32.dll", "rpcrt4.dll": "RPCRT4.dll",
	"iphlpapi.dll": "IPHLPAPI.DLL", "bcryptprimitives.dll": "bcryptprimitives.dll",
	"vcruntime140_1.dll": "VCRUNTIME140_1.dll", "msvcp140.dll": "MSVCP140.dll",
}

// systemDLL returns the synthesized DLL for a lower-case name, or nil when
// the name is not a system DLL (and must be found on disk).
func systemDLL(lname string) *dllKind {
	switch lname {
	case "ntdll.dll":
		return ntdllKind
	case "kernel32.dll":
		return kernel32Kind
	case "kernelbase.dll":
		return kernelbaseKind
	case "msvcrt.dll":
		return msvcrtKind
	case "ucrtbase.dll":
		return ucrtKind
	case "vcruntime140.dll":
		return vcruntimeKind
	}
	if strings.HasPrefix(lname, "api-ms-win-crt-") && strings.HasSuffix(lname, ".dll") {
		return &dllKind{canon: lname, forwardTo: "ucrtbase.dll"}
	}
	if (strings.HasPrefix(lname, "api-ms-win-") || strings.HasPrefix(lname, "ext-ms-win-")) && strings.HasSuffix(lname, ".dll") {
		return &dllKind{canon: lname, forwardTo: "kernelbase.dll"}
	}
	if c, ok := otherSystemDLLs[lname]; ok {
		return &dllKind{canon: c, handlers: map[string]apiExport{}}
	}
	return nil
}

func ripRel(here uint64, off int, slot uint64) []byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(int32(int64(slot)-int64(here)-int64(off))))
	return b[:]
}

// RtlUserThreadStart(start rcx, arg rdx): the first frame of every thread.
//
//	48 83 EC 48        sub  rsp, 48h
//	4C 8B C2           mov  r8, rdx          ; arg
//	48 8B D1           mov  rdx, rcx         ; start routine
//	33 C9              xor  ecx, ecx         ; flags
//	FF 15 xx xx xx xx  call [BaseThreadInitThunk]
//	8B C8              mov  ecx, eax
//	FF 15 xx xx xx xx  call [RtlExitUserProcess]
//	CC                 int3
var rtlUserThreadStart = codeFunc{
	name: "RtlUserThreadStart", export: true, size: 27, unwind: unwindAllocSmall(0x48),
	emit: func(here uint64, slot func(string) uint64) []byte {
		b := []byte{0x48, 0x83, 0xEC, 0x48, 0x4C, 0x8B, 0xC2, 0x48, 0x8B, 0xD1, 0x33, 0xC9, 0xFF, 0x15}
		b = append(b, ripRel(here, 18, slot("KERNEL32.dll!BaseThreadInitThunk"))...)
		b = append(b, 0x8B, 0xC8, 0xFF, 0x15)
		b = append(b, ripRel(here, 26, slot("ntdll.dll!RtlExitUserProcess"))...)
		return append(b, 0xCC)
	},
}

// BaseThreadInitThunk(flags ecx, start rdx, arg r8): calls the start
// routine and exits the thread with its return value.
//
//	48 83 EC 28        sub  rsp, 28h
//	48 8B C2           mov  rax, rdx
//	49 8B C8           mov  rcx, r8
//	FF D0              call rax
//	8B C8              mov  ecx, eax
//	FF 15 xx xx xx xx  call [RtlExitUserThread]
//	CC                 int3
var baseThreadInitThunk = codeFunc{
	name: "BaseThreadInitThunk", export: true, size: 21, unwind: unwindAllocSmall(0x28),
	emit: func(here uint64, slot func(string) uint64) []byte {
		b := []byte{0x48, 0x83, 0xEC, 0x28, 0x48, 0x8B, 0xC2, 0x49, 0x8B, 0xC8, 0xFF, 0xD0, 0x8B, 0xC8, 0xFF, 0x15}
		b = append(b, ripRel(here, 20, slot("ntdll.dll!RtlExitUserThread"))...)
		return append(b, 0xCC)
	},
}

func init() {
	ntdllKind = &dllKind{
		canon:    "ntdll.dll",
		handlers: ntdllAPI(),
		code:     []codeFunc{rtlUserThreadStart},
		slots:    []string{"KERNEL32.dll!BaseThreadInitThunk", "ntdll.dll!RtlExitUserProcess"},
	}
	k32 := kernel32API()
	kernel32Kind = &dllKind{
		canon:    "KERNEL32.dll",
		handlers: k32,
		code:     append([]codeFunc{baseThreadInitThunk}, kernel32Natives...),
		slots:    []string{"ntdll.dll!RtlExitUserThread", slotTSC0, slotTSCMul},
	}
	kernelbaseKind = &dllKind{canon: "KERNELBASE.dll", handlers: k32, code: kernel32Natives, slots: []string{slotTSC0, slotTSCMul}}
	msvcrtKind = &dllKind{canon: "msvcrt.dll", handlers: crtAPI(false), data: crtData(false), init: initCRTData, code: crtNatives}
	ucrtKind = &dllKind{canon: "ucrtbase.dll", handlers: crtAPI(true), data: crtData(true), init: initCRTData, code: crtNatives}
	vcruntimeKind = &dllKind{canon: "VCRUNTIME140.dll", handlers: vcruntimeAPI()}
}
