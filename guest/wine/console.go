package wine

// The standard handles are pipe-like streams to the stub's own standard
// input, output and error, as when a program runs under wine with its
// output redirected: GetFileType says FILE_TYPE_PIPE, console functions
// fail on them and the C runtimes fall back to WriteFile.

func (p *Process) makeStdHandles() error {
	kind := func(i int) string {
		switch k := p.cfg.StdioKinds[i]; k {
		case "file", "char", "nul":
			return k
		}
		return "pipe"
	}
	p.stdStreams = [3]*stream{
		{kind: kind(0), r: p.cfg.Stdin, w: p.cfg.Stdout},
		{kind: kind(1), r: eofReader{}, w: p.cfg.Stdout},
		{kind: kind(2), r: eofReader{}, w: p.cfg.Stderr},
	}
	for i, s := range p.stdStreams {
		name := [...]string{"<stdin>", "<stdout>", "<stderr>"}[i]
		access := uint32(GENERIC_READ | 0x100000)
		if i > 0 {
			access = GENERIC_WRITE | 0x100000
		}
		h := p.handles.add(&fileObject{guestPath: name, stream: s, access: access, options: FILE_SYNCHRONOUS_IO_NONALERT}, access)
		p.std[i] = h
	}
	return nil
}

// consoleIoctl serves \Device\ConDrv requests. There is no console yet:
// every request fails, as for a process without one.
func (p *Process) consoleIoctl(c *call, f *fileObject) ntstatus {
	return STATUS_INVALID_HANDLE
}
