package guest

import "fmt"

// The C runtime's memory exports (msvcrt.dll, ucrtbase.dll): their handlers,
// listed by crtExports in api_crt.go.

// crt_malloc implements malloc.
func crt_malloc(c *call) error { return crtAlloc(c, c.arg(0), false) }

// crt_calloc implements calloc.
func crt_calloc(c *call) error {
	n, s := c.arg(0), c.arg(1)
	if s != 0 && n > (1<<40)/s {
		c.setErrno(12)
		return c.ret(0)
	}
	return crtAlloc(c, n*s, true)
}

// crt_realloc implements realloc.
func crt_realloc(c *call) error {
	if c.arg(1) == 0 && c.arg(0) != 0 {
		c.p.heap.release(c.arg(0))
		return c.ret(0)
	}
	a, err := c.p.heap.realloc(c.arg(0), c.arg(1))
	if err != nil {
		return err
	}
	return c.ret(a)
}

// crt_free implements free.
func crt_free(c *call) error {
	if a := c.arg(0); a != 0 && !c.p.heap.release(a) {
		c.p.log.Warn("free of a pointer that is not a live block", "ptr", fmt.Sprintf("%#x", a))
	}
	return c.ret(0)
}

// crt__msize implements _msize.
func crt__msize(c *call) error {
	n, ok := c.p.heap.size(c.arg(0))
	if !ok {
		return c.ret(^uint64(0))
	}
	return c.ret(n)
}

// crt__aligned_free implements _aligned_free.
func crt__aligned_free(c *call) error {
	if o, ok := c.p.win32.aligned[c.arg(0)]; ok {
		delete(c.p.win32.aligned, c.arg(0))
		c.p.heap.release(o)
	}
	return c.ret(0)
}

func crtAlloc(c *call, n uint64, zero bool) error {
	a, err := c.p.heap.alloc(n, zero)
	if err != nil {
		return err
	}
	if a == 0 {
		c.setErrno(12) // ENOMEM
	}
	return c.ret(a)
}

func alignedMalloc(c *call) error {
	size, align := c.arg(0), c.arg(1)
	if align == 0 || align&(align-1) != 0 || align > 1<<20 {
		c.setErrno(22)
		return c.ret(0)
	}
	o, err := c.p.heap.alloc(size+align, false)
	if err != nil || o == 0 {
		return crtAlloc(c, 1<<62, false)
	}
	a := (o + align - 1) &^ (align - 1)
	c.p.win32.aligned[a] = o
	return c.ret(a)
}
