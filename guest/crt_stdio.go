package guest

import (
	"fmt"
	"io"
)

// The C runtime's stdio exports (msvcrt.dll, ucrtbase.dll): their handlers,
// listed by crtExports in api_crt.go.

// crt_printf implements printf.
func crt_printf(c *call) error { return crtPrintf(c, c.p.cfg.Stdout, 0, &regArgs{c: c, i: 1}) }

// crt_vprintf implements vprintf.
func crt_vprintf(c *call) error {
	return crtPrintf(c, c.p.cfg.Stdout, 0, &vaList{p: c.p, ptr: c.arg(1)})
}

// crt_fprintf implements fprintf.
func crt_fprintf(c *call) error { return crtFprintf(c, c.arg(0), 1, &regArgs{c: c, i: 2}) }

// crt_vfprintf implements vfprintf.
func crt_vfprintf(c *call) error { return crtFprintf(c, c.arg(0), 1, &vaList{p: c.p, ptr: c.arg(2)}) }

// crt_sprintf implements sprintf.
func crt_sprintf(c *call) error {
	return crtSprintf(c, c.arg(0), ^uint64(0), 1, &regArgs{c: c, i: 2}, false)
}

// crt_vsprintf implements vsprintf.
func crt_vsprintf(c *call) error {
	return crtSprintf(c, c.arg(0), ^uint64(0), 1, &vaList{p: c.p, ptr: c.arg(2)}, false)
}

// crt_snprintf implements snprintf.
func crt_snprintf(c *call) error {
	return crtSprintf(c, c.arg(0), c.arg(1), 2, &regArgs{c: c, i: 3}, true)
}

// crt__snprintf implements _snprintf.
func crt__snprintf(c *call) error {
	return crtSprintf(c, c.arg(0), c.arg(1), 2, &regArgs{c: c, i: 3}, false)
}

// crt_vsnprintf implements vsnprintf.
func crt_vsnprintf(c *call) error {
	return crtSprintf(c, c.arg(0), c.arg(1), 2, &vaList{p: c.p, ptr: c.arg(3)}, true)
}

// crt__vsnprintf implements _vsnprintf.
func crt__vsnprintf(c *call) error {
	return crtSprintf(c, c.arg(0), c.arg(1), 2, &vaList{p: c.p, ptr: c.arg(3)}, false)
}

// crt__vscprintf implements _vscprintf.
func crt__vscprintf(c *call) error {
	s, err := c.p.format(c.str(0), &vaList{p: c.p, ptr: c.arg(1)}, c.crt().style)
	if err != nil {
		return err
	}
	return c.ret(uint64(len(s)))
}

// crt_puts implements puts.
func crt_puts(c *call) error {
	io.WriteString(c.p.cfg.Stdout, c.str(0)+"\n")
	return c.ret(0)
}

// crt_putchar implements putchar.
func crt_putchar(c *call) error {
	c.p.cfg.Stdout.Write([]byte{byte(c.arg(0))})
	return c.ret(uint64(byte(c.arg(0))))
}

// crt_fputs implements fputs.
func crt_fputs(c *call) error {
	w, ok := c.stream(c.arg(1))
	if !ok || w == nil {
		return unknownStream(c, c.arg(1))
	}
	io.WriteString(w, c.str(0))
	return c.ret(0)
}

// crt_fwrite implements fwrite.
func crt_fwrite(c *call) error {
	size, n := c.arg(1), c.arg(2)
	w, ok := c.stream(c.arg(3))
	if !ok || w == nil {
		return unknownStream(c, c.arg(3))
	}
	if size == 0 || n == 0 {
		return c.ret(0)
	}
	if n > (1<<28)/size {
		return fmt.Errorf("fwrite of %d*%d bytes", n, size)
	}
	w.Write(c.rbytes(c.arg(0), size*n))
	return c.ret(n)
}

// crt__fileno implements _fileno.
func crt__fileno(c *call) error { return fileno(c) }

// crt_fileno implements fileno.
func crt_fileno(c *call) error { return fileno(c) }

// crt__setmode implements _setmode.
func crt__setmode(c *call) error { return c.ret(0x4000) }

// crt_getchar implements getchar.
func crt_getchar(c *call) error { return c.ret(eof) }

// crt_fgetc implements fgetc.
func crt_fgetc(c *call) error { return c.ret(eof) }

// crt_getc implements getc.
func crt_getc(c *call) error { return c.ret(eof) }

// crt___iob_func implements __iob_func.
func crt___iob_func(c *call) error { return c.ret(c.crt().iob) }

// crt___acrt_iob_func implements __acrt_iob_func.
func crt___acrt_iob_func(c *call) error {
	return c.ret(c.crt().iob + fileSize*uint64(uint32(c.arg(0))%3))
}

// crt___stdio_common_vfprintf implements __stdio_common_vfprintf.
func crt___stdio_common_vfprintf(c *call) error {
	return crtFprintf(c, c.arg(1), 2, &vaList{p: c.p, ptr: c.arg(4)})
}

// crt___stdio_common_vsprintf implements __stdio_common_vsprintf.
func crt___stdio_common_vsprintf(c *call) error {
	// _CRT_INTERNAL_PRINTF_STANDARD_SNPRINTF_BEHAVIOR (2) selects C99 snprintf semantics.
	return crtSprintf(c, c.arg(1), c.arg(2), 3, &vaList{p: c.p, ptr: c.arg(5)}, c.arg(0)&2 != 0 || c.arg(1) == 0)
}

func unknownStream(c *call, f uint64) error {
	c.setErrno(9) // EBADF
	c.p.log.Warn("write to a FILE* that is not stdout/stderr", "file", fmt.Sprintf("%#x", f))
	return c.ret(eof)
}

func fputc(c *call) error {
	w, ok := c.stream(c.arg(1))
	if !ok || w == nil {
		return unknownStream(c, c.arg(1))
	}
	w.Write([]byte{byte(c.arg(0))})
	return c.ret(uint64(byte(c.arg(0))))
}

func fileno(c *call) error {
	for _, st := range c.p.win32.crt {
		if f := c.arg(0); f >= st.iob && f < st.iob+3*fileSize {
			return c.ret((f - st.iob) / fileSize)
		}
	}
	return c.ret(eof)
}

func crtPrintf(c *call, w io.Writer, fmtArg int, args argSource) error {
	s, err := c.p.format(c.str(fmtArg), args, c.crt().style)
	if err != nil {
		return err
	}
	io.WriteString(w, s)
	return c.ret(uint64(len(s)))
}

func crtFprintf(c *call, f uint64, fmtArg int, args argSource) error {
	w, ok := c.stream(f)
	if !ok || w == nil {
		return unknownStream(c, f)
	}
	return crtPrintf(c, w, fmtArg, args)
}

// crtSprintf formats into a guest buffer of n bytes. c99 selects snprintf
// semantics (always terminate, return the full length); otherwise
// _snprintf's (no terminator and -1 when truncated).
func crtSprintf(c *call, buf, n uint64, fmtArg int, args argSource, c99 bool) error {
	s, err := c.p.format(c.str(fmtArg), args, c.crt().style)
	if err != nil {
		return err
	}
	b := []byte(s)
	if n == ^uint64(0) { // sprintf: unbounded
		c.wbytes(buf, append(b, 0))
		return c.ret(uint64(len(b)))
	}
	if c99 {
		if n > 0 && buf != 0 {
			k := uint64(len(b))
			if k > n-1 {
				k = n - 1
			}
			c.wbytes(buf, append(b[:k:k], 0))
		}
		return c.ret(uint64(len(b)))
	}
	if uint64(len(b)) > n {
		c.wbytes(buf, b[:n])
		return c.ret(eof | 0xFFFFFFFF00000000)
	}
	if uint64(len(b)) < n {
		b = append(b, 0)
	}
	c.wbytes(buf, b)
	return c.ret(uint64(len(s)))
}
