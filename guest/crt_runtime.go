package guest

import (
	"fmt"
	"io"
)

// The C runtime's startup, exit, errno, locale and floating point exports
// (msvcrt.dll, ucrtbase.dll): their handlers, listed by crtExports in
// api_crt.go.

// crt___getmainargs implements __getmainargs.
func crt___getmainargs(c *call) error {
	st := c.crt()
	return getMainArgs(c, st.argc, st.argv, st.env)
}

// crt___wgetmainargs implements __wgetmainargs.
func crt___wgetmainargs(c *call) error {
	st := c.crt()
	return getMainArgs(c, st.argc, st.wargv, st.wenv)
}

// crt___p__acmdln implements __p__acmdln.
func crt___p__acmdln(c *call) error { return c.ret(c.crt().acmd) }

// crt___p__wcmdln implements __p__wcmdln.
func crt___p__wcmdln(c *call) error { return c.ret(c.crt().wcmd) }

// crt___p__commode implements __p__commode.
func crt___p__commode(c *call) error { return c.ret(c.crt().commode) }

// crt___p__fmode implements __p__fmode.
func crt___p__fmode(c *call) error { return c.ret(c.crt().fmode) }

// crt___p___argc implements __p___argc.
func crt___p___argc(c *call) error { return c.ret(c.crt().argc) }

// crt___p___argv implements __p___argv.
func crt___p___argv(c *call) error { return c.ret(c.crt().argv) }

// crt___p___wargv implements __p___wargv.
func crt___p___wargv(c *call) error { return c.ret(c.crt().wargv) }

// crt___p__environ implements __p__environ.
func crt___p__environ(c *call) error { return c.ret(c.crt().env) }

// crt___p__wenviron implements __p__wenviron.
func crt___p__wenviron(c *call) error { return c.ret(c.crt().wenv) }

// crt__get_initial_narrow_environment implements _get_initial_narrow_environment.
func crt__get_initial_narrow_environment(c *call) error {
	v, err := c.p.mem.ReadU64(c.crt().env)
	if err != nil {
		return err
	}
	return c.ret(v)
}

// crt__get_initial_wide_environment implements _get_initial_wide_environment.
func crt__get_initial_wide_environment(c *call) error {
	v, err := c.p.mem.ReadU64(c.crt().wenv)
	if err != nil {
		return err
	}
	return c.ret(v)
}

// crt__set_fmode implements _set_fmode.
func crt__set_fmode(c *call) error { c.w32(c.crt().fmode, uint32(c.arg(0))); return c.ret(0) }

// crt__initterm implements _initterm.
func crt__initterm(c *call) error { return initterm(c, false) }

// crt__initterm_e implements _initterm_e.
func crt__initterm_e(c *call) error { return initterm(c, true) }

// crt__amsg_exit implements _amsg_exit.
func crt__amsg_exit(c *call) error {
	fmt.Fprintf(c.p.cfg.Stderr, "runtime error R60%02d\n", uint32(c.arg(0)))
	return exitProcess(c, 255)
}

// crt__cexit implements _cexit.
func crt__cexit(c *call) error { return runOnexit(c, func(c *call) error { return c.ret(0) }) }

// crt_exit implements exit.
func crt_exit(c *call) error {
	code := int(int32(c.arg(0)))
	return runOnexit(c, func(c *call) error { return exitProcess(c, code) })
}

// crt__exit implements _exit.
func crt__exit(c *call) error { return exitProcess(c, int(int32(c.arg(0)))) }

// crt__Exit implements _Exit.
func crt__Exit(c *call) error { return exitProcess(c, int(int32(c.arg(0)))) }

// crt_quick_exit implements quick_exit.
func crt_quick_exit(c *call) error { return exitProcess(c, int(int32(c.arg(0)))) }

// crt_abort implements abort.
func crt_abort(c *call) error {
	io.WriteString(c.p.cfg.Stderr, "\nabnormal program termination\n")
	return exitProcess(c, 3)
}

// crt_terminate implements terminate.
func crt_terminate(c *call) error { return exitProcess(c, 3) }

// crt__onexit implements _onexit.
func crt__onexit(c *call) error {
	c.p.win32.onexit = append(c.p.win32.onexit, c.arg(0))
	return c.ret(c.arg(0))
}

// crt_atexit implements atexit.
func crt_atexit(c *call) error {
	c.p.win32.onexit = append(c.p.win32.onexit, c.arg(0))
	return c.ret(0)
}

// crt__crt_atexit implements _crt_atexit.
func crt__crt_atexit(c *call) error {
	c.p.win32.onexit = append(c.p.win32.onexit, c.arg(0))
	return c.ret(0)
}

// crt___dllonexit implements __dllonexit.
func crt___dllonexit(c *call) error {
	c.p.win32.onexit = append(c.p.win32.onexit, c.arg(0))
	return c.ret(c.arg(0))
}

// crt__initialize_onexit_table implements _initialize_onexit_table.
func crt__initialize_onexit_table(c *call) error {
	c.p.win32.onexitTables[c.arg(0)] = nil
	c.wbytes(c.arg(0), make([]byte, 24))
	return c.ret(0)
}

// crt__register_onexit_function implements _register_onexit_function.
func crt__register_onexit_function(c *call) error {
	t := c.p.win32.onexitTables
	t[c.arg(0)] = append(t[c.arg(0)], c.arg(1))
	return c.ret(0)
}

// crt__execute_onexit_table implements _execute_onexit_table.
func crt__execute_onexit_table(c *call) error {
	fns := c.p.win32.onexitTables[c.arg(0)]
	delete(c.p.win32.onexitTables, c.arg(0))
	var calls []guestCall
	for i := len(fns) - 1; i >= 0; i-- {
		calls = append(calls, guestCall{fn: fns[i]})
	}
	return c.callSeq(calls, func(c *call) error { return c.ret(0) })
}

// crt__errno implements _errno.
func crt__errno(c *call) error { return c.ret(c.crt().errno) }

// crt___doserrno implements __doserrno.
func crt___doserrno(c *call) error { return c.ret(c.crt().errno + 4) }

// crt_strerror implements strerror.
func crt_strerror(c *call) error {
	st := c.crt()
	s := fmt.Sprintf("Unknown error %d", int32(c.arg(0)))
	if m, ok := errnoText[uint32(c.arg(0))]; ok {
		s = m
	}
	c.wbytes(st.strerr, append([]byte(cut(s, 250)), 0))
	return c.ret(st.strerr)
}

// crt_localeconv implements localeconv.
func crt_localeconv(c *call) error { return c.ret(c.crt().lconv) }

// crt__controlfp implements _controlfp.
func crt__controlfp(c *call) error { return c.ret(0x9001F) }

// crt__control87 implements _control87.
func crt__control87(c *call) error { return c.ret(0x9001F) }

var errnoText = map[uint32]string{
	0: "No error", 1: "Operation not permitted", 2: "No such file or directory", 3: "No such process",
	4: "Interrupted function call", 5: "Input/output error", 9: "Bad file descriptor", 12: "Not enough space",
	13: "Permission denied", 17: "File exists", 22: "Invalid argument", 24: "Too many open files",
	28: "No space left on device", 33: "Domain error", 34: "Result too large",
}

func getMainArgs(c *call, argc, argv, env uint64) error {
	n, err := c.p.mem.ReadU32(argc)
	if err != nil {
		return err
	}
	av, err := c.p.mem.ReadU64(argv)
	if err != nil {
		return err
	}
	ev, err := c.p.mem.ReadU64(env)
	if err != nil {
		return err
	}
	c.w32(c.arg(0), n)
	c.w64(c.arg(1), av)
	c.w64(c.arg(2), ev)
	return c.ret(0)
}

// initterm calls every non-NULL function pointer in [begin, end) as guest
// code; _initterm_e stops at the first that returns non-zero.
func initterm(c *call, withErr bool) error {
	begin, end := c.arg(0), c.arg(1)
	if end < begin || end-begin > 1<<20 {
		return c.ret(0)
	}
	var calls []guestCall
	for a := begin; a < end; a += 8 {
		f, err := c.p.mem.ReadU64(a)
		if err != nil {
			return err
		}
		if f == 0 {
			continue
		}
		g := guestCall{fn: f}
		if withErr {
			g.then = func(c *call, ret uint64) error {
				if uint32(ret) != 0 {
					return c.ret(uint64(uint32(ret)))
				}
				return nil
			}
		}
		calls = append(calls, g)
	}
	return c.callSeq(calls, func(c *call) error { return c.ret(0) })
}

// exitProcess ends the process the way the C runtime does on Windows:
// through the guest's own KERNEL32!ExitProcess (a debugger's breakpoint
// there is hit, and the stack shows the runtime's exit calling it). A
// process without kernel32 ends at once.
func exitProcess(c *call, code int) error {
	k := c.p.findModule("kernel32.dll")
	if k == nil {
		return c.exit(code)
	}
	fn, err := c.p.resolveExport(k, "ExitProcess", 0, false, false, 0)
	if err != nil || fn == 0 {
		return c.exit(code)
	}
	return c.callGuest(fn, []uint64{uint64(uint32(int32(code)))}, func(c *call, _ uint64) error { return c.exit(code) })
}

// runOnexit runs the atexit/_onexit functions in reverse order of
// registration, then done.
func runOnexit(c *call, done func(c *call) error) error {
	fns := c.p.win32.onexit
	c.p.win32.onexit = nil
	var calls []guestCall
	for i := len(fns) - 1; i >= 0; i-- {
		calls = append(calls, guestCall{fn: fns[i]})
	}
	return c.callSeq(calls, done)
}

// qsort sorts by binary insertion, calling the guest comparator on copies
// of the two elements placed in a scratch heap block.
func qsort(c *call) error {
	base, n, size, cmp := c.arg(0), c.arg(1), c.arg(2), c.arg(3)
	if n < 2 || size == 0 {
		return c.ret(0)
	}
	if size > 1<<16 || n > 1<<20 || n*size > 1<<26 {
		return fmt.Errorf("qsort of %d elements of %d bytes is too large", n, size)
	}
	data := c.rbytes(base, n*size)
	if c.err != nil {
		return nil
	}
	elems := make([][]byte, n)
	for i := range elems {
		elems[i] = data[uint64(i)*size : uint64(i+1)*size]
	}
	scratch, err := c.p.heap.alloc(2*size, false)
	if err != nil || scratch == 0 {
		return fmt.Errorf("qsort: no scratch memory")
	}
	sorted := [][]byte{elems[0]}
	var step func(c *call, i, lo, hi int) error
	finish := func(c *call) error {
		out := make([]byte, 0, n*size)
		for _, e := range sorted {
			out = append(out, e...)
		}
		c.wbytes(base, out)
		c.p.heap.release(scratch)
		return c.ret(0)
	}
	step = func(c *call, i, lo, hi int) error {
		for lo >= hi {
			sorted = append(sorted, nil)
			copy(sorted[lo+1:], sorted[lo:])
			sorted[lo] = elems[i]
			i++
			if i == len(elems) {
				return finish(c)
			}
			lo, hi = 0, len(sorted)
		}
		mid := (lo + hi) / 2
		c.wbytes(scratch, elems[i])
		c.wbytes(scratch+size, sorted[mid])
		return c.callGuest(cmp, []uint64{scratch, scratch + size}, func(c *call, r uint64) error {
			if int32(r) < 0 {
				return step(c, i, lo, mid)
			}
			return step(c, i, mid+1, hi)
		})
	}
	return step(c, 1, 0, 1)
}
