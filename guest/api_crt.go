package guest

import (
	"io"

	"github.com/rspstub/rspstub/guest/process"
)

// msvcrt's FILE is 0x30 bytes on x64: _ptr, _cnt, _base, _flag, _file,
// _charbuf, _bufsiz, _tmpfname. The ucrt's FILE is opaque; the same array
// serves both. Only the standard streams exist.
const (
	fileSize   = 0x30
	fileFile   = 0x1C
	fileFlag   = 0x18
	iobEntries = 20
)

// crtState is one CRT DLL's data.
type crtState struct {
	mod     *module
	ucrt    bool
	iob     uint64
	errno   uint64
	argc    uint64 // int
	argv    uint64 // char**
	wargv   uint64
	env     uint64 // char**
	wenv    uint64
	acmd    uint64 // char*
	wcmd    uint64
	fmode   uint64
	commode uint64
	lconv   uint64
	strerr  uint64
	mbcur   uint64
	style   printfStyle
}

func crtData(ucrt bool) []dataExport {
	d := []dataExport{
		{name: "\x7ferrno", size: 8},
		{name: "\x7flconv", size: 0x98},
		{name: "\x7fstrerror", size: 256},
	}
	if ucrt {
		return append(d,
			dataExport{name: "\x7fiob", size: iobEntries * fileSize},
			dataExport{name: "\x7f__argc", size: 8},
			dataExport{name: "\x7f__argv", size: 8},
			dataExport{name: "\x7f__wargv", size: 8},
			dataExport{name: "\x7f_environ", size: 8},
			dataExport{name: "\x7f_wenviron", size: 8},
			dataExport{name: "\x7f_acmdln", size: 8},
			dataExport{name: "\x7f_wcmdln", size: 8},
			dataExport{name: "\x7f_fmode", size: 8},
			dataExport{name: "\x7f_commode", size: 8},
			dataExport{name: "\x7f__mb_cur_max", size: 8},
		)
	}
	return append(d,
		dataExport{name: "_iob", size: iobEntries * fileSize, export: true},
		dataExport{name: "__argc", size: 8, export: true},
		dataExport{name: "__argv", size: 8, export: true},
		dataExport{name: "__wargv", size: 8, export: true},
		dataExport{name: "_environ", size: 8, export: true},
		dataExport{name: "__initenv", size: 8, export: true},
		dataExport{name: "_wenviron", size: 8, export: true},
		dataExport{name: "__winitenv", size: 8, export: true},
		dataExport{name: "_acmdln", size: 8, export: true},
		dataExport{name: "_wcmdln", size: 8, export: true},
		dataExport{name: "_fmode", size: 8, export: true},
		dataExport{name: "_commode", size: 8, export: true},
		dataExport{name: "__mb_cur_max", size: 8, export: true},
		dataExport{name: "_pgmptr", size: 8, export: true},
		dataExport{name: "_wpgmptr", size: 8, export: true},
	)
}

// splitArgs gives argv as the program will see it.
func (p *Process) argv() []string {
	return append([]string{p.guestWinPath}, p.cfg.Args...)
}

// initCRTData fills a CRT DLL's variables once the heap exists.
func initCRTData(p *Process, m *module) error {
	si := m.synth
	ucrt := m.kind == ucrtKind
	d := func(n string) uint64 {
		if r, ok := si.dataRVA[n]; ok {
			return m.Base + uint64(r)
		}
		if r, ok := si.dataRVA["\x7f"+n]; ok {
			return m.Base + uint64(r)
		}
		return 0
	}
	st := &crtState{mod: m, ucrt: ucrt, iob: d("iob"), errno: d("errno"), argc: d("__argc"), argv: d("__argv"),
		wargv: d("__wargv"), env: d("_environ"), wenv: d("_wenviron"), acmd: d("_acmdln"), wcmd: d("_wcmdln"),
		fmode: d("_fmode"), commode: d("_commode"), lconv: d("lconv"), strerr: d("strerror"), mbcur: d("__mb_cur_max")}
	if st.iob == 0 {
		st.iob = d("_iob")
	}
	st.style = printfStyle{expDigits: 3, roundHalfUp: true}
	if ucrt {
		st.style.expDigits = 2
	}
	p.win32.crt[m] = st
	w := &errWriter{p: p}
	for i := uint64(0); i < 3; i++ {
		w.u32(st.iob+i*fileSize+fileFile, uint32(i))
		w.u32(st.iob+i*fileSize+fileFlag, []uint32{0x1, 0x2, 0x2}[i])
	}
	// argv and environment, narrow and wide
	args := p.argv()
	mkArr := func(strs []string, wide bool) (uint64, error) {
		arr, err := p.heap.alloc(8*uint64(len(strs)+1), true)
		if err != nil {
			return 0, err
		}
		for i, s := range strs {
			var b []byte
			if wide {
				b = process.UTF16Bytes(s, true)
			} else {
				b = append([]byte(s), 0)
			}
			a, err := p.heap.allocBytes(b)
			if err != nil {
				return 0, err
			}
			if err := p.mem.WriteU64(arr+8*uint64(i), a); err != nil {
				return 0, err
			}
		}
		return arr, nil
	}
	av, err := mkArr(args, false)
	if err != nil {
		return err
	}
	wav, err := mkArr(args, true)
	if err != nil {
		return err
	}
	ev, err := mkArr(p.envList(), false)
	if err != nil {
		return err
	}
	wev, err := mkArr(p.envList(), true)
	if err != nil {
		return err
	}
	ac, err := p.heap.allocBytes(append([]byte(p.commandLine()), 0))
	if err != nil {
		return err
	}
	wc, err := p.heap.allocBytes(process.UTF16Bytes(p.commandLine(), true))
	if err != nil {
		return err
	}
	w.u32(st.argc, uint32(len(args)))
	w.u64(st.argv, av)
	w.u64(st.wargv, wav)
	w.u64(st.env, ev)
	w.u64(st.wenv, wev)
	w.u64(st.acmd, ac)
	w.u64(st.wcmd, wc)
	w.u32(st.mbcur, 1)
	if a := d("__initenv"); a != 0 {
		w.u64(a, ev)
	}
	if a := d("__winitenv"); a != 0 {
		w.u64(a, wev)
	}
	if a := d("_pgmptr"); a != 0 {
		s, err := p.heap.allocBytes(append([]byte(p.guestWinPath), 0))
		if err != nil {
			return err
		}
		w.u64(a, s)
	}
	// lconv: decimal_point "." and empty strings for the other char* fields.
	dot, err := p.heap.allocBytes([]byte(".\x00"))
	if err != nil {
		return err
	}
	for off := uint64(0); off < 0x48; off += 8 {
		w.u64(st.lconv+off, dot+1)
	}
	w.u64(st.lconv, dot)
	return w.err
}

func (c *call) crt() *crtState {
	if st := c.p.win32.crt[c.s.mod]; st != nil {
		return st
	}
	// vcruntime and others share the first CRT loaded.
	for _, st := range c.p.win32.crt {
		return st
	}
	return &crtState{style: printfStyle{expDigits: 2}}
}

// stream maps a FILE* to an output writer (nil: not a stream we know).
func (c *call) stream(f uint64) (io.Writer, bool) {
	for _, st := range c.p.win32.crt {
		if f >= st.iob && f < st.iob+3*fileSize {
			switch (f - st.iob) / fileSize {
			case 1:
				return c.p.cfg.Stdout, true
			case 2:
				return c.p.cfg.Stderr, true
			}
			return nil, true // stdin
		}
	}
	return nil, false
}

func (c *call) setErrno(v uint32) {
	if st := c.crt(); st.errno != 0 {
		c.w32(st.errno, v)
	}
}

const eof = 0xFFFFFFFF // (int)-1

// crtExports is the export table of msvcrt.dll and ucrtbase.dll: one line
// per export (its name, arity and handler), in groups named after the files that
// hold their implementations.
var crtExports = []apiExport{
	// memory (guest/crt_memory.go)
	{"malloc", 1, crt_malloc},
	{"calloc", 2, crt_calloc},
	{"realloc", 2, crt_realloc},
	{"free", 1, crt_free},
	{"_msize", 1, crt__msize},
	{"_aligned_malloc", 2, alignedMalloc},
	{"_aligned_free", 1, crt__aligned_free},
	// strings and memory blocks (guest/crt_string.go)
	{"strlen", 1, crt_strlen},
	{"wcslen", 1, crt_wcslen},
	{"strnlen", 2, crt_strnlen},
	{"strcmp", 2, crt_strcmp},
	{"strncmp", 3, crt_strncmp},
	{"_stricmp", 2, crt__stricmp},
	{"_strnicmp", 3, crt__strnicmp},
	{"strcpy", 2, crt_strcpy},
	{"strncpy", 3, crt_strncpy},
	{"strcat", 2, crt_strcat},
	{"strncat", 3, crt_strncat},
	{"strchr", 2, crt_strchr},
	{"strrchr", 2, crt_strrchr},
	{"strstr", 2, crt_strstr},
	{"strdup", 1, strdup},
	{"_strdup", 1, strdup},
	{"memcpy", 3, memmove},
	{"memmove", 3, memmove},
	{"memset", 3, crt_memset},
	{"memcmp", 3, crt_memcmp},
	{"memchr", 3, crt_memchr},
	{"toupper", 1, crt_toupper},
	{"tolower", 1, crt_tolower},
	{"isdigit", 1, ctype(func(b byte) bool { return b >= '0' && b <= '9' })},
	{"isalpha", 1, ctype(func(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' })},
	{"isalnum", 1, ctype(func(b byte) bool { return b >= '0' && b <= '9' || (b|0x20) >= 'a' && (b|0x20) <= 'z' })},
	{"isspace", 1, ctype(func(b byte) bool { return b == ' ' || b >= 9 && b <= 13 })},
	{"isupper", 1, ctype(func(b byte) bool { return b >= 'A' && b <= 'Z' })},
	{"islower", 1, ctype(func(b byte) bool { return b >= 'a' && b <= 'z' })},
	{"isxdigit", 1, crt_isxdigit},
	{"isprint", 1, ctype(func(b byte) bool { return b >= 0x20 && b < 0x7F })},
	{"ispunct", 1, crt_ispunct},
	{"atoi", 1, crt_atoi},
	{"atol", 1, crt_atol},
	{"atoll", 1, crt_atoll},
	{"_atoi64", 1, crt__atoi64},
	{"strtol", 3, crt_strtol},
	{"strtoul", 3, crt_strtoul},
	{"strtoll", 3, crt_strtoll},
	{"strtoull", 3, crt_strtoull},
	{"_strtoi64", 3, crt__strtoi64},
	{"_strtoui64", 3, crt__strtoui64},
	{"abs", 1, crt_abs},
	{"labs", 1, crt_labs},
	{"llabs", 1, crt_llabs},
	{"_abs64", 1, crt__abs64},
	{"rand", 0, crt_rand},
	{"srand", 1, crt_srand},
	{"time", 1, crtTime},
	{"_time64", 1, crtTime},
	{"_time32", 1, crtTime},
	{"clock", 0, crt_clock},
	{"getenv", 1, crt_getenv},
	// stdio (guest/crt_stdio.go)
	{"printf", 1, crt_printf},
	{"vprintf", 2, crt_vprintf},
	{"fprintf", 2, crt_fprintf},
	{"vfprintf", 3, crt_vfprintf},
	{"sprintf", 2, crt_sprintf},
	{"vsprintf", 3, crt_vsprintf},
	{"snprintf", 3, crt_snprintf},
	{"_snprintf", 3, crt__snprintf},
	{"vsnprintf", 4, crt_vsnprintf},
	{"_vsnprintf", 4, crt__vsnprintf},
	{"_vscprintf", 2, crt__vscprintf},
	{"puts", 1, crt_puts},
	{"putchar", 1, crt_putchar},
	{"fputc", 2, fputc},
	{"putc", 2, fputc},
	{"fputs", 2, crt_fputs},
	{"fwrite", 4, crt_fwrite},
	{"fflush", 1, ret0},
	{"setvbuf", 4, ret0},
	{"_fileno", 1, crt__fileno},
	{"fileno", 1, crt_fileno},
	{"_isatty", 1, ret0},
	{"_setmode", 2, crt__setmode},
	{"getchar", 0, crt_getchar},
	{"fgetc", 1, crt_fgetc},
	{"getc", 1, crt_getc},
	{"fgets", 3, ret0},
	{"__iob_func", 0, crt___iob_func},
	{"__acrt_iob_func", 1, crt___acrt_iob_func},
	// ucrt stdio entry points: options, FILE*/buffer, format, locale, va_list (guest/crt_stdio.go)
	{"__stdio_common_vfprintf", 5, crt___stdio_common_vfprintf},
	{"__stdio_common_vsprintf", 6, crt___stdio_common_vsprintf},
	// startup and exit (guest/crt_runtime.go)
	{"__getmainargs", 5, crt___getmainargs},
	{"__wgetmainargs", 5, crt___wgetmainargs},
	{"__set_app_type", 1, ret0},
	{"_set_app_type", 1, ret0},
	{"__setusermatherr", 1, ret0},
	{"_setusermatherr", 1, ret0},
	{"__p__acmdln", 0, crt___p__acmdln},
	{"__p__wcmdln", 0, crt___p__wcmdln},
	{"__p__commode", 0, crt___p__commode},
	{"__p__fmode", 0, crt___p__fmode},
	{"__p___argc", 0, crt___p___argc},
	{"__p___argv", 0, crt___p___argv},
	{"__p___wargv", 0, crt___p___wargv},
	{"__p__environ", 0, crt___p__environ},
	{"__p__wenviron", 0, crt___p__wenviron},
	{"_configure_narrow_argv", 1, ret0},
	{"_configure_wide_argv", 1, ret0},
	{"_initialize_narrow_environment", 0, ret0},
	{"_initialize_wide_environment", 0, ret0},
	{"_get_initial_narrow_environment", 0, crt__get_initial_narrow_environment},
	{"_get_initial_wide_environment", 0, crt__get_initial_wide_environment},
	{"_set_fmode", 1, crt__set_fmode},
	{"_initterm", 2, crt__initterm},
	{"_initterm_e", 2, crt__initterm_e},
	{"_amsg_exit", 1, crt__amsg_exit},
	{"_cexit", 0, crt__cexit},
	{"_c_exit", 0, ret0},
	{"exit", 1, crt_exit},
	{"_exit", 1, crt__exit},
	{"_Exit", 1, crt__Exit},
	{"quick_exit", 1, crt_quick_exit},
	{"abort", 0, crt_abort},
	{"terminate", 0, crt_terminate},
	{"_onexit", 1, crt__onexit},
	{"atexit", 1, crt_atexit},
	{"_crt_atexit", 1, crt__crt_atexit},
	{"__dllonexit", 3, crt___dllonexit},
	{"_initialize_onexit_table", 1, crt__initialize_onexit_table},
	{"_register_onexit_function", 2, crt__register_onexit_function},
	{"_execute_onexit_table", 1, crt__execute_onexit_table},
	{"_register_thread_local_exe_atexit_callback", 1, ret0},
	{"_lock", 1, ret0},
	{"_unlock", 1, ret0},
	{"_errno", 0, crt__errno},
	{"__doserrno", 0, crt___doserrno},
	{"strerror", 1, crt_strerror},
	{"localeconv", 0, crt_localeconv},
	{"___lc_codepage_func", 0, ret0},
	{"___mb_cur_max_func", 0, ret1},
	{"__lconv_init", 0, ret0},
	{"setlocale", 2, ret0},
	{"signal", 2, ret0}, // SIG_DFL
	{"_fpreset", 0, ret0},
	{"fesetenv", 1, ret0},
	{"_controlfp", 2, crt__controlfp},
	{"_control87", 2, crt__control87},
	{"_controlfp_s", 3, ret0},
	{"_set_invalid_parameter_handler", 1, ret0},
	{"_set_new_mode", 1, ret0},
	{"_configthreadlocale", 1, ret0},
	{"_seh_filter_exe", 2, ret0},
	{"_set_abort_behavior", 2, ret0},
	{"__setlc_active_func", 0, ret0},
	{"qsort", 4, qsort},
	{"__C_specific_handler", 4, cSpecificHandler},
}

func crtAPI(ucrt bool) map[string]apiExport {
	return exportMap(crtExports)
}

// vcruntimeExports is VCRUNTIME140.dll's export table: its own lines, then
// the memory and string functions it shares with the C runtime.
var vcruntimeExports = []apiExport{
	{"__std_type_info_destroy_list", 1, ret0},
	{"__C_specific_handler", 4, cSpecificHandler},
}

// vcruntimeShared are the C runtime's exports VCRUNTIME140.dll has too.
var vcruntimeShared = []string{"memcpy", "memmove", "memset", "memcmp", "memchr", "strchr", "strrchr", "strstr"}

func vcruntimeAPI() map[string]apiExport {
	all := crtAPI(true)
	table := append([]apiExport(nil), vcruntimeExports...)
	for _, n := range vcruntimeShared {
		table = append(table, all[n])
	}
	return exportMap(table)
}
