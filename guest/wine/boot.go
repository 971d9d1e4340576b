package wine

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/peimage"
)

// Process start: what Wine's unix side builds before the first PE
// instruction. The PE ntdll does the rest itself (loader data, heap, TLS,
// kernel32 and the program's imports) through system calls.

const (
	pid      = 0x20 // the guest's process id
	firstTID = 0x24 // its first thread id; later threads count up by 4
)

// Guest identity (fixed, so runs are repeatable).
const (
	guestUser     = "user"
	guestComputer = "RSPSTUB"
)

// mapUserSharedData maps KUSER_SHARED_DATA at 0x7ffe0000. Its SystemCall
// byte (0x308) is 0, so every ntdll thunk executes `syscall`.
func (p *Process) mapUserSharedData() error {
	a, err := p.vm.reserve(kuserBase, allocGranule, process.PAGE_READONLY, process.MEM_PRIVATE, "KUSER_SHARED_DATA")
	if err != nil {
		return err
	}
	if err := p.vm.commit(a, kuserBase, 2*process.PageSize, process.PAGE_READONLY); err != nil {
		return err
	}
	b := make(memw, process.PageSize)
	b.u32(kuserTickCountMult, 1<<24)
	b.u32(kuserTimeZoneBias, 0)
	copy(b[kuserNtSystemRoot:], process.UTF16Bytes(`C:\windows`, true))
	b.u32(kuserMaxStackDepth, 0)
	b.u32(kuserNtBuildNumber, 7601)
	b.u32(kuserNtProductType, 1) // NtProductWinNt
	b.u8(kuserProductTypeValid, 1)
	b.u16(kuserNativeArch, 9) // PROCESSOR_ARCHITECTURE_AMD64
	b.u32(kuserNtMajorVersion, 6)
	b.u32(kuserNtMinorVersion, 1)
	// ProcessorFeatures: the ones the emulated CPU has.
	for _, f := range []int{
		1,  // PF_FLOATING_POINT_EMULATED is 1; set below only what exists
		3,  // PF_MMX_INSTRUCTIONS_AVAILABLE
		6,  // PF_XMMI_INSTRUCTIONS_AVAILABLE (SSE)
		8,  // PF_RDTSC_INSTRUCTION_AVAILABLE
		9,  // PF_PAE_ENABLED
		10, // PF_XMMI64_INSTRUCTIONS_AVAILABLE (SSE2)
		12, // PF_NX_ENABLED
		13, // PF_SSE3_INSTRUCTIONS_AVAILABLE
		14, // PF_COMPARE_EXCHANGE128
		20, // PF_FASTFAIL_AVAILABLE
	} {
		if f != 1 {
			b.u8(kuserProcessorFeatures+f, 1)
		}
	}
	b.u32(kuserActiveConsoleID, 1)
	b.u32(kuserNumPhysicalPages, 0x100000) // 4 GiB
	b.u64(kuserQpcFrequency, 10_000_000)
	b.u8(kuserSystemCall, 0)
	b.u32(kuserCookie, 0x5ec0de)
	b.u32(kuserActiveProcessors, 1)
	b.u16(kuserActiveGroupCount, 1)
	if err := p.mem.Write(kuserBase, b); err != nil {
		return err
	}
	p.updateUserShared()
	return nil
}

// makePEB allocates the PEB block: the PEB itself, and at +0x2000 Wine's
// debug channel table (16-byte entries {flags, name[15]}, sorted by name,
// ended by an empty name whose flags are the default).
func (p *Process) makePEB() error {
	a, err := p.allocate(0x7ff0_0000, pebBlockSize, process.PAGE_READWRITE, process.MEM_PRIVATE, false, "PEB")
	if err != nil {
		return err
	}
	p.peb = a.base
	b := make(memw, 0x800)
	b.u64(process.PEBImageBase, p.exe.Base)
	b.u32(process.PEBNumberOfProcessors, 1)
	critSec := int64(-30 * 24 * 60 * 60 * 10_000_000) // 30 days, relative
	b.u64(process.PEBCritSecTimeout, uint64(critSec))
	b.u64(process.PEBHeapSegmentReserve, 0x100000)
	b.u64(process.PEBHeapSegmentCommit, 0x10000)
	b.u64(process.PEBHeapDecommitTotal, 0x10000)
	b.u64(process.PEBHeapDecommitFree, 0x1000)
	b.u32(process.PEBMaxHeaps, 16)
	b.u32(process.PEBOSMajorVersion, 6)
	b.u32(process.PEBOSMinorVersion, 1)
	b.u16(process.PEBOSBuildNumber, 7601)
	b.u32(process.PEBOSPlatformID, 2) // VER_PLATFORM_WIN32_NT
	b.u32(process.PEBImageSubsystem, uint32(p.exeFile.Subsystem))
	b.u32(process.PEBImageSubsystemMajor, uint32(p.exeFile.MajorSubsystemVersion))
	b.u32(process.PEBImageSubsystemMinor, uint32(p.exeFile.MinorSubsystemVersion))
	b.u64(process.PEBAffinityMask, 1)
	b.u32(process.PEBSessionID, 1)
	b.u64(pebCloudFileFlags, 0)
	if err := p.mem.Write(p.peb, b); err != nil {
		return err
	}
	opts, err := debugOptions(p.cfg.WineDebug)
	if err != nil {
		return err
	}
	return p.mem.Write(p.peb+pebDebugOptions, opts)
}

// Wine's debug classes (include/wine/debug.h): the bit numbers of a
// channel's flags.
const (
	dbclFixme       = 0
	dbclErr         = 1
	dbclWarn        = 2
	dbclTrace       = 3
	maxDebugOptions = 256
)

// debugOptions builds Wine's channel table from a WINEDEBUG-style list:
// "+file" turns every class of channel file on, "-file" off,
// "warn+file"/"trace-heap" one class, "+all" every channel.
func debugOptions(spec string) ([]byte, error) {
	def := uint8(1 << dbclErr)
	chans := map[string]uint8{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.IndexAny(item, "+-")
		if i < 0 {
			return nil, fmt.Errorf("--wine-debug %q: each item is [class]+channel or [class]-channel", item)
		}
		class, on, name := item[:i], item[i] == '+', item[i+1:]
		var mask uint8
		switch class {
		case "":
			mask = 1<<dbclFixme | 1<<dbclErr | 1<<dbclWarn | 1<<dbclTrace
		case "fixme":
			mask = 1 << dbclFixme
		case "err":
			mask = 1 << dbclErr
		case "warn":
			mask = 1 << dbclWarn
		case "trace":
			mask = 1 << dbclTrace
		default:
			return nil, fmt.Errorf("--wine-debug %q: unknown class %q (fixme, err, warn, trace)", item, class)
		}
		if name == "" || len(name) > 14 {
			return nil, fmt.Errorf("--wine-debug %q: bad channel name", item)
		}
		if name == "all" {
			if on {
				def |= mask
			} else {
				def &^= mask
			}
			for n := range chans {
				if on {
					chans[n] |= mask
				} else {
					chans[n] &^= mask
				}
			}
			continue
		}
		v, ok := chans[name]
		if !ok {
			v = def
		}
		if on {
			v |= mask
		} else {
			v &^= mask
		}
		chans[name] = v
	}
	if len(chans) >= maxDebugOptions {
		return nil, fmt.Errorf("--wine-debug names more than %d channels", maxDebugOptions-1)
	}
	names := make([]string, 0, len(chans))
	for n := range chans {
		names = append(names, n)
	}
	sort.Strings(names) // strcmp order: Wine binary-searches the table
	b := make([]byte, 16*(len(names)+1))
	for i, n := range names {
		b[16*i] = chans[n]
		copy(b[16*i+1:16*i+16], n)
	}
	b[16*len(names)] = def
	return b, nil
}

// loadAPISet maps apisetschema.dll flat and points PEB.ApiSetMap at its
// .apiset section (version 6), as Wine's unix side does: the loader
// resolves api-ms-win-* imports (ucrt programs) through it.
func (p *Process) loadAPISet() error {
	path := filepath.Join(p.inst.DLLDir, "apisetschema.dll")
	data, err := os.ReadFile(path)
	if err != nil {
		p.log.Warn("no API set schema: api-ms-win-* imports will not resolve", "err", err)
		return nil
	}
	f, err := peimage.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range f.Sections {
		if s.Name != ".apiset" {
			continue
		}
		if uint64(s.PointerToRawData)+uint64(s.VirtualSize) > uint64(len(data)) || s.VirtualSize < 8 ||
			binary.LittleEndian.Uint32(data[s.PointerToRawData:]) != 6 {
			return fmt.Errorf("%s: unexpected .apiset section", path)
		}
		c := &call{p: p}
		base, st := p.mapFlat(c, data, "apisetschema.dll")
		if st != STATUS_SUCCESS || c.err != nil {
			return fmt.Errorf("map the API set schema: %v %v", st, c.err)
		}
		return p.mem.WriteU64(p.peb+process.PEBApiSetMap, base+uint64(s.PointerToRawData))
	}
	return fmt.Errorf("%s has no .apiset section", path)
}

// DefaultEnv is the guest's environment before Config.Env: what a fresh
// Windows 10 install gives a console program.
func DefaultEnv() []string {
	return []string{
		`ALLUSERSPROFILE=C:\ProgramData`,
		`APPDATA=C:\users\` + guestUser + `\AppData\Roaming`,
		`CommonProgramFiles=C:\Program Files\Common Files`,
		`COMPUTERNAME=` + guestComputer,
		`ComSpec=C:\windows\system32\cmd.exe`,
		`HOMEDRIVE=C:`,
		`HOMEPATH=\users\` + guestUser,
		`LOCALAPPDATA=C:\users\` + guestUser + `\AppData\Local`,
		`NUMBER_OF_PROCESSORS=1`,
		`OS=Windows_NT`,
		`PATH=C:\windows\system32;C:\windows;C:\windows\system32\wbem`,
		`PATHEXT=.COM;.EXE;.BAT;.CMD;.VBS;.JS;.WSH;.MSC`,
		`PROCESSOR_ARCHITECTURE=AMD64`,
		`ProgramData=C:\ProgramData`,
		`ProgramFiles=C:\Program Files`,
		`PUBLIC=C:\users\Public`,
		`SystemDrive=C:`,
		`SystemRoot=C:\windows`,
		`TEMP=C:\users\` + guestUser + `\AppData\Local\Temp`,
		`TMP=C:\users\` + guestUser + `\AppData\Local\Temp`,
		`USERDOMAIN=` + guestComputer,
		`USERNAME=` + guestUser,
		`USERPROFILE=C:\users\` + guestUser,
		`windir=C:\windows`,
	}
}

// guestDirs are the folders a Windows install has that programs expect.
var guestDirs = []string{
	`windows`, `windows\system32`, `windows\temp`, `ProgramData`, `Program Files`,
	`Program Files\Common Files`, `users\Public`,
	`users\` + guestUser + `\AppData\Roaming`, `users\` + guestUser + `\AppData\Local\Temp`,
}

// environment merges DefaultEnv and Config.Env (case-insensitive names,
// later wins) and sorts it as Windows keeps it.
func (p *Process) environment() []string {
	vals := map[string]string{}
	names := map[string]string{}
	for _, kv := range append(DefaultEnv(), p.cfg.Env...) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		lk := strings.ToUpper(k)
		vals[lk] = v
		names[lk] = k
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = names[k] + "=" + vals[k]
	}
	return out
}

// makeParams builds a normalized RTL_USER_PROCESS_PARAMETERS in its own
// allocation (ntdll copies it and frees this one).
func (p *Process) makeParams() error {
	cmd := process.CommandLine(p.fs.programPath, p.cfg.Args)
	cwd := p.cfg.Cwd
	if cwd == "" {
		cwd = `C:\`
	}
	if !strings.HasSuffix(cwd, `\`) {
		cwd += `\`
	}
	envb := process.EnvironmentBlock(p.environment())

	type str struct {
		off  int
		s    string
		max  int
		data []byte
	}
	strs := []*str{
		{off: process.RPPCurrentDirectory, s: cwd, max: 260 * 2},
		{off: process.RPPDllPath, s: ""},
		{off: process.RPPImagePathName, s: p.fs.programPath},
		{off: process.RPPCommandLine, s: cmd},
		{off: process.RPPWindowTitle, s: p.fs.programPath},
		{off: process.RPPDesktop, s: ""},
		{off: process.RPPShellInfo, s: ""},
		{off: process.RPPRuntimeInfo, s: ""},
	}
	size := ppStructSize
	for _, s := range strs {
		s.data = process.UTF16Bytes(s.s, true)
		if s.max < len(s.data) {
			s.max = len(s.data)
		}
		size += (s.max + 7) &^ 7
	}
	envOff := size
	size += len(envb)
	if size > 1<<20 {
		return fmt.Errorf("the command line and environment take %d bytes (at most 1 MiB)", size)
	}
	a, err := p.allocate(0, uint64(size), process.PAGE_READWRITE, process.MEM_PRIVATE, false, "process parameters")
	if err != nil {
		return err
	}
	b := make(memw, size)
	b.u32(process.RPPMaximumLength, uint32(process.PageUp(uint64(size))))
	b.u32(process.RPPLength, uint32(size))
	b.u32(process.RPPFlags, 1) // PROCESS_PARAMS_FLAG_NORMALIZED
	b.u64(process.RPPConsoleHandle, p.consoleHandle)
	b.u64(process.RPPStandardInput, p.std[0])
	b.u64(process.RPPStandardOutput, p.std[1])
	b.u64(process.RPPStandardError, p.std[2])
	pos := ppStructSize
	for _, s := range strs {
		copy(b[pos:], s.data)
		n := len(s.data) - 2
		if s.s == "" && s.off != process.RPPCurrentDirectory {
			b.ustr(s.off, 0, 0, 0) // an empty string has no buffer (DllPath: the default search path)
		} else {
			b.ustr(s.off, uint16(n), uint16(s.max), a.base+uint64(pos))
		}
		pos += (s.max + 7) &^ 7
	}
	copy(b[envOff:], envb)
	b.u64(process.RPPEnvironment, a.base+uint64(envOff))
	b.u64(process.RPPEnvironmentSize, uint64(len(envb)))
	if err := p.mem.Write(a.base, b); err != nil {
		return err
	}
	return p.mem.WriteU64(p.peb+process.PEBProcessParameters, a.base)
}
