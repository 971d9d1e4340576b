package wine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
)

// System information, time, locale and NLS system calls.

const (
	SystemBasicInformation                = 0
	SystemCpuInformation                  = 1
	SystemPerformanceInformation          = 2
	SystemTimeOfDayInformation            = 3
	SystemProcessInformation              = 5
	SystemProcessorPerformanceInformation = 8
	SystemFlagsInformation                = 9
	SystemModuleInformation               = 11
	SystemInterruptInformation            = 23
	SystemTimeAdjustmentInformation       = 28
	SystemKernelDebuggerInformation       = 35
	SystemRegistryQuotaInformation        = 37
	SystemCurrentTimeZoneInformation      = 44
	SystemRecommendedSharedDataAlignment  = 58
	SystemEmulationBasicInformation       = 62
	SystemEmulationProcessorInformation   = 63
	SystemLogicalProcessorInformation     = 73
	SystemFirmwareTableInformation        = 76
	SystemDynamicTimeZoneInformation      = 102
	SystemCodeIntegrityInformation        = 103
	SystemLogicalProcessorInformationEx   = 107
	SystemNativeBasicInformation          = 114
	SystemKernelDebuggerInformationEx     = 149
	SystemCpuSetInformation               = 175
)

func (p *Process) systemInfo(class uint32, buf uint64, length uint32) (memw, ntstatus) {
	var b memw
	switch class {
	case SystemBasicInformation, SystemEmulationBasicInformation, SystemNativeBasicInformation:
		b = make(memw, 0x40)
		b.u32(4, 156250) // TimerResolution, 100 ns units
		b.u32(8, process.PageSize)
		b.u32(0xc, 0x100000)
		b.u32(0x10, 1)
		b.u32(0x14, 0xfffff)
		b.u32(0x18, allocGranule)
		b.u64(0x20, process.LowestAddress)
		b.u64(0x28, highestAddress)
		b.u64(0x30, 1)
		b.u8(0x38, 1)
	case SystemCpuInformation, SystemEmulationProcessorInformation:
		b = make(memw, 12)
		b.u16(0, 9)                                                           // PROCESSOR_ARCHITECTURE_AMD64
		b.u16(2, 6)                                                           // level
		b.u16(4, 0x0f01)                                                      // revision
		b.u16(6, 1)                                                           // maximum processors
		b.u32(8, 0x1|0x2|0x4|0x8|0x10|0x20|0x40|0x80|0x100|0x200|0x400|0x800) // CPU_FEATURE_*: the SSE2-era set
	case SystemPerformanceInformation:
		b = make(memw, 0x158)
		if length > 0x158 {
			b = make(memw, length&^7)
		}
	case SystemTimeOfDayInformation:
		b = make(memw, 48)
		b.u64(0, uint64(virtualEpoch.UnixNano()/100+filetimeOffset))
		b.u64(8, uint64(p.clock.systemTime()))
	case SystemProcessorPerformanceInformation:
		b = make(memw, 48)
		t := uint64(p.clock.sinceBoot())
		b.u64(8, t/2)
		b.u64(16, t)
	case SystemInterruptInformation:
		b = make(memw, 24)
	case SystemFlagsInformation:
		b = make(memw, 4)
	case SystemTimeAdjustmentInformation:
		b = make(memw, 12)
		b.u32(0, 156250)
		b.u32(4, 156250)
		b.u8(8, 1)
	case SystemKernelDebuggerInformation:
		b = make(memw, 2)
		b.u8(1, 1) // KernelDebuggerNotPresent
	case SystemKernelDebuggerInformationEx:
		b = make(memw, 3)
	case SystemRegistryQuotaInformation:
		b = make(memw, 12)
		b.u32(0, 0x20000000)
		b.u32(4, 0x200000)
		b.u32(8, 0x20000000)
	case SystemCurrentTimeZoneInformation, SystemDynamicTimeZoneInformation:
		// UTC, no daylight saving time.
		size := 172
		if class == SystemDynamicTimeZoneInformation {
			size = 432
		}
		b = make(memw, size)
		copy(b[4:], process.UTF16Bytes("Coordinated Universal Time", false))
		copy(b[88:], process.UTF16Bytes("Coordinated Universal Time", false))
		if class == SystemDynamicTimeZoneInformation {
			copy(b[172:], process.UTF16Bytes("UTC", false))
		}
	case SystemRecommendedSharedDataAlignment:
		b = make(memw, 4)
		b.u32(0, 64)
	case SystemCodeIntegrityInformation:
		b = make(memw, 8)
		b.u32(0, 8)
		b.u32(4, 1) // CODEINTEGRITY_OPTION_ENABLED
	case SystemLogicalProcessorInformation:
		// One core, one package, three cache levels.
		b = make(memw, 0)
		add := func(rel uint32, f func(e memw)) {
			e := make(memw, 32)
			e.u64(0, 1)
			e.u32(8, rel)
			f(e)
			b = append(b, e...)
		}
		add(0, func(e memw) { e.u8(16, 1) }) // RelationProcessorCore, Flags=1 (SMT no; 1 = shares functional units?)
		add(3, func(e memw) {})              // RelationProcessorPackage
		add(1, func(e memw) {})              // RelationNumaNode
		for _, l := range []struct {
			level, typ uint8
			size       uint32
		}{{1, 1, 32 << 10}, {1, 2, 32 << 10}, {2, 0, 256 << 10}, {3, 0, 8 << 20}} {
			l := l
			add(2, func(e memw) { // RelationCache: CACHE_DESCRIPTOR
				e.u8(16, l.level)
				e.u8(17, 8)
				e.u16(18, 64)
				e.u32(20, l.size)
				e.u32(24, uint32(l.typ))
			})
		}
	case 1000: // SystemWineVersionInformation: version, build, sysname, release
		v := p.inst.Version + "\x00" + p.inst.Build + "\x00Linux\x00rspstub\x00"
		b = memw(v)
	case SystemModuleInformation, SystemProcessInformation, SystemFirmwareTableInformation,
		SystemCpuSetInformation, SystemLogicalProcessorInformationEx:
		return nil, STATUS_NOT_IMPLEMENTED
	default:
		return nil, STATUS_INVALID_INFO_CLASS
	}
	return b, STATUS_SUCCESS
}

// NtQuerySystemInformation(class, buffer, length, *ret_len)
func ntQuerySystemInformation(p *Process, c *call) ntstatus {
	class, buf, length, retPtr := c.arg32(0), c.arg(1), c.arg32(2), c.arg(3)
	c.note("class=%d", class)
	b, st := p.systemInfo(class, buf, length)
	if st != STATUS_SUCCESS {
		return st
	}
	c.put32(retPtr, uint32(len(b)))
	if length < uint32(len(b)) {
		return STATUS_INFO_LENGTH_MISMATCH
	}
	c.putBytes(buf, b)
	return STATUS_SUCCESS
}

// NtQuerySystemInformationEx(class, query, query_len, buffer, length, *ret_len)
func ntQuerySystemInformationEx(p *Process, c *call) ntstatus {
	class, buf, length, retPtr := c.arg32(0), c.arg(3), c.arg32(4), c.arg(5)
	c.note("class=%d", class)
	if class == SystemLogicalProcessorInformationEx {
		// SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX for one core and its
		// package: {Relationship, Size, PROCESSOR_RELATIONSHIP{Flags,
		// EfficiencyClass, Reserved[20], GroupCount, GROUP_AFFINITY[]}}.
		ent := func(rel uint32) memw {
			e := make(memw, 48)
			e.u32(0, rel)
			e.u32(4, 48)
			e.u16(30, 1) // GroupCount
			e.u64(32, 1) // Mask
			return e
		}
		b := append(ent(0), ent(3)...)
		c.put32(retPtr, uint32(len(b)))
		if length < uint32(len(b)) {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		c.putBytes(buf, b)
		return STATUS_SUCCESS
	}
	b, st := p.systemInfo(class, buf, length)
	if st != STATUS_SUCCESS {
		return st
	}
	c.put32(retPtr, uint32(len(b)))
	if length < uint32(len(b)) {
		return STATUS_INFO_LENGTH_MISMATCH
	}
	c.putBytes(buf, b)
	return STATUS_SUCCESS
}

// NtQuerySystemTime(*time)
func ntQuerySystemTime(p *Process, c *call) ntstatus {
	p.clock.read()
	c.put64(c.arg(0), uint64(p.clock.systemTime()))
	return STATUS_SUCCESS
}

// NtQueryPerformanceCounter(*counter, *frequency): 10 MHz, the interrupt
// time.
func ntQueryPerformanceCounter(p *Process, c *call) ntstatus {
	c.put64(c.arg(0), uint64(p.clock.read()))
	c.put64(c.arg(1), 10_000_000)
	return STATUS_SUCCESS
}

// NtQueryTimerResolution(*min, *max, *current)
func ntQueryTimerResolution(p *Process, c *call) ntstatus {
	c.put32(c.arg(0), 156250)
	c.put32(c.arg(1), 5000)
	c.put32(c.arg(2), 156250)
	return STATUS_SUCCESS
}

// NtSetTimerResolution(resolution, set, *current)
func ntSetTimerResolution(p *Process, c *call) ntstatus {
	c.put32(c.arg(2), 156250)
	return STATUS_SUCCESS
}

const guestLCID = 0x409 // en-US

// NtQueryDefaultLocale(user, *lcid)
func ntQueryDefaultLocale(p *Process, c *call) ntstatus {
	c.put32(c.arg(1), guestLCID)
	return STATUS_SUCCESS
}

// NtQueryDefaultUILanguage / NtQueryInstallUILanguage(*lang)
func ntQueryUILanguage(p *Process, c *call) ntstatus {
	c.put32(c.arg(0), guestLCID)
	return STATUS_SUCCESS
}

// NtSetDefaultLocale / NtSetDefaultUILanguage: accepted, not kept.
func ntSetLocale(p *Process, c *call) ntstatus { return STATUS_SUCCESS }

// mapNLS maps one of Wine's NLS files read-only and returns its address
// and size; each file is mapped once.
func (p *Process) mapNLS(c *call, name string) (uint64, uint64, ntstatus) {
	if a, ok := p.nls[name]; ok {
		return a[0], a[1], STATUS_SUCCESS
	}
	path := filepath.Join(p.inst.NLSDir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, STATUS_OBJECT_NAME_NOT_FOUND
	}
	base, st := p.mapFlat(c, data, name)
	if st != STATUS_SUCCESS {
		return 0, 0, st
	}
	if p.nls == nil {
		p.nls = map[string][2]uint64{}
	}
	p.nls[name] = [2]uint64{base, uint64(len(data))}
	return base, uint64(len(data)), STATUS_SUCCESS
}

// mapFlat maps bytes read-only in a new allocation (a file mapped as
// data: NLS tables, the API set schema).
func (p *Process) mapFlat(c *call, data []byte, name string) (uint64, ntstatus) {
	size := process.PageUp(uint64(len(data)))
	if size == 0 {
		return 0, STATUS_MAPPED_FILE_SIZE_ZERO
	}
	base, ok := p.vm.findFree((size+allocGranule-1)&^(allocGranule-1), allocGranule, 0, false)
	if !ok {
		return 0, STATUS_NO_MEMORY
	}
	a, err := p.vm.reserve(base, size, process.PAGE_READONLY, process.MEM_MAPPED, name)
	if err != nil {
		return 0, STATUS_NO_MEMORY
	}
	if err := p.vm.commitData(a, base, size, process.PAGE_READONLY, data); err != nil {
		p.vm.release(a)
		return 0, c.commitFailed(err)
	}
	return base, STATUS_SUCCESS
}

// NtInitializeNlsFiles(*ptr, *lcid, *size)
func ntInitializeNlsFiles(p *Process, c *call) ntstatus {
	base, size, st := p.mapNLS(c, "locale.nls")
	if st != STATUS_SUCCESS {
		return st
	}
	c.put64(c.arg(0), base)
	c.put32(c.arg(1), guestLCID)
	c.put64(c.arg(2), size)
	return STATUS_SUCCESS
}

// NLS section types (Wine's NtGetNlsSectionPtr).
const (
	nlsSortKeys  = 9
	nlsCaseMap   = 10
	nlsCodePage  = 11
	nlsNormalize = 12
)

// NtGetNlsSectionPtr(type, id, unknown, *ptr, *size)
func ntGetNlsSectionPtr(p *Process, c *call) ntstatus {
	typ, id := c.arg32(0), c.arg32(1)
	var name string
	switch typ {
	case nlsSortKeys:
		if id != 0 {
			return STATUS_INVALID_PARAMETER_1
		}
		name = "sortdefault.nls"
	case nlsCaseMap:
		if id != 0 {
			return STATUS_UNSUCCESSFUL
		}
		name = "l_intl.nls"
	case nlsCodePage:
		name = fmt.Sprintf("c_%03d.nls", id)
	case nlsNormalize:
		switch id {
		case 1:
			name = "normnfc.nls"
		case 2:
			name = "normnfd.nls"
		case 5:
			name = "normnfkc.nls"
		case 6:
			name = "normnfkd.nls"
		case 13:
			name = "normidna.nls"
		default:
			return STATUS_OBJECT_NAME_NOT_FOUND
		}
	default:
		return STATUS_INVALID_PARAMETER_1
	}
	c.note("%s", name)
	base, size, st := p.mapNLS(c, name)
	if st != STATUS_SUCCESS {
		return st
	}
	c.put64(c.arg(3), base)
	c.put64(c.arg(4), size)
	return STATUS_SUCCESS
}

// NtAllocateLocallyUniqueId(*luid)
func ntAllocateLocallyUniqueId(p *Process, c *call) ntstatus {
	p.luid++
	c.put64(c.arg(0), 0x10000+p.luid)
	return STATUS_SUCCESS
}

// NtAllocateUuids(*time, *range, *sequence, *seed)
func ntAllocateUuids(p *Process, c *call) ntstatus {
	p.luid++
	c.put64(c.arg(0), uint64(p.clock.systemTime())+p.luid)
	c.put32(c.arg(1), 1)
	c.put32(c.arg(2), uint32(p.luid))
	return STATUS_SUCCESS
}

// NtDisplayString(UNICODE_STRING*)
func ntDisplayString(p *Process, c *call) ntstatus {
	s := c.ustr(c.arg(0))
	fmt.Fprint(p.cfg.Stderr, s)
	return STATUS_SUCCESS
}

// NtQueryLicenseValue / NtQuerySystemEnvironmentValue*: nothing is
// licensed, no firmware variables.
func ntNotFound(p *Process, c *call) ntstatus { return STATUS_OBJECT_NAME_NOT_FOUND }

// NtPowerInformation(level, in, in_len, out, out_len)
func ntPowerInformation(p *Process, c *call) ntstatus {
	out, n := c.arg(3), c.arg32(4)
	if n > 4096 {
		n = 4096
	}
	c.putBytes(out, make([]byte, n))
	return STATUS_SUCCESS
}

// __wine_dbg_write(str, len): Wine's debug channel output.
func wineDbgWrite(p *Process, c *call) ntstatus {
	n := c.arg32(1)
	if n > 1<<16 {
		n = 1 << 16
	}
	s := string(c.bytes(c.arg(0), int(n)))
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		p.log.Info("wine", "tid", fmt.Sprintf("%#x", c.t.tid), "msg", line)
	}
	return ntstatus(n)
}

// wineUnixCall serves __wine_unix_call(handle, code, args) made through
// our __wine_unix_call_dispatcher stub. ntdll's own unix library has
// three functions: load_so_dll (there is no .so to load), unwind_builtin_dll
// (no unix frames exist) and system_time_precise.
func (p *Process) wineUnixCall(c *call) ntstatus {
	handle, code, args := c.arg(0), c.arg32(1), c.arg(2)
	c.note("handle=%#x code=%d", handle, code)
	if handle != unixLibNtdll {
		lib := fmt.Sprintf("%#x", handle)
		for _, m := range p.modules {
			if m.Base == handle {
				lib = strings.TrimSuffix(m.Name, ".dll") + ".so"
			}
		}
		if lib == "win32u.so" {
			// win32u asks its unix side for its syscall dispatcher and
			// callbacks at load; there is no window system.
			return STATUS_NOT_IMPLEMENTED
		}
		c.unimplemented = fmt.Sprintf("unix call #%d of %s", code, lib)
		return STATUS_NOT_IMPLEMENTED
	}
	switch code {
	case 0: // load_so_dll
		return STATUS_DLL_NOT_FOUND
	case 1: // unwind_builtin_dll
		return STATUS_NOT_IMPLEMENTED
	case 2: // system_time_precise(LONGLONG *time)
		p.clock.read()
		c.put64(args, uint64(p.clock.systemTime()))
		return STATUS_SUCCESS
	}
	return STATUS_NOT_IMPLEMENTED
}
