package guest

import (
	"encoding/binary"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
)

// KERNEL32.dll's command line, environment and startup exports: their
// handlers, listed by kernel32Exports in api_kernel32.go.

// k32_GetCommandLineA implements GetCommandLineA.
func k32_GetCommandLineA(c *call) error {
	if c.p.win32.cmdA == 0 {
		a, err := c.p.heap.allocBytes(append([]byte(c.p.commandLine()), 0))
		if err != nil {
			return err
		}
		c.p.win32.cmdA = a
	}
	return c.ret(c.p.win32.cmdA)
}

// k32_GetCommandLineW implements GetCommandLineW.
func k32_GetCommandLineW(c *call) error {
	if c.p.win32.cmdW == 0 {
		a, err := c.p.heap.allocBytes(process.UTF16Bytes(c.p.commandLine(), true))
		if err != nil {
			return err
		}
		c.p.win32.cmdW = a
	}
	return c.ret(c.p.win32.cmdW)
}

// k32_GetEnvironmentStrings implements GetEnvironmentStrings.
func k32_GetEnvironmentStrings(c *call) error { return getEnvironmentStrings(c, false) }

// k32_GetEnvironmentStringsA implements GetEnvironmentStringsA.
func k32_GetEnvironmentStringsA(c *call) error { return getEnvironmentStrings(c, false) }

// k32_GetEnvironmentStringsW implements GetEnvironmentStringsW.
func k32_GetEnvironmentStringsW(c *call) error { return getEnvironmentStrings(c, true) }

// k32_FreeEnvironmentStringsA implements FreeEnvironmentStringsA.
func k32_FreeEnvironmentStringsA(c *call) error { c.p.heap.release(c.arg(0)); return c.ret(1) }

// k32_FreeEnvironmentStringsW implements FreeEnvironmentStringsW.
func k32_FreeEnvironmentStringsW(c *call) error { c.p.heap.release(c.arg(0)); return c.ret(1) }

// k32_GetEnvironmentVariableA implements GetEnvironmentVariableA.
func k32_GetEnvironmentVariableA(c *call) error { return getEnvironmentVariable(c, c.str(0), false) }

// k32_GetEnvironmentVariableW implements GetEnvironmentVariableW.
func k32_GetEnvironmentVariableW(c *call) error { return getEnvironmentVariable(c, c.wstr(0), true) }

// k32_SetEnvironmentVariableA implements SetEnvironmentVariableA.
func k32_SetEnvironmentVariableA(c *call) error {
	return setEnvironmentVariable(c, c.str(0), c.str(1), c.arg(1) == 0)
}

// k32_SetEnvironmentVariableW implements SetEnvironmentVariableW.
func k32_SetEnvironmentVariableW(c *call) error {
	return setEnvironmentVariable(c, c.wstr(0), c.wstr(1), c.arg(1) == 0)
}

func (p *Process) envList() []string {
	if !p.win32.envInit {
		p.win32.envVars = append([]string(nil), p.environment()...)
		p.win32.envInit = true
	}
	return p.win32.envVars
}

func getEnvironmentStrings(c *call, wide bool) error {
	var b []byte
	for _, e := range c.p.envList() {
		if wide {
			b = append(b, process.UTF16Bytes(e, true)...)
		} else {
			b = append(append(b, e...), 0)
		}
	}
	if wide {
		b = append(b, 0, 0, 0, 0)
	} else {
		b = append(b, 0, 0)
	}
	a, err := c.p.heap.allocBytes(b)
	if err != nil {
		return err
	}
	return c.ret(a)
}

func (p *Process) getenv(name string) (string, bool) {
	for _, e := range p.envList() {
		if k, v, ok := strings.Cut(e, "="); ok && strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func getEnvironmentVariable(c *call, name string, wide bool) error {
	v, ok := c.p.getenv(name)
	if !ok {
		return c.fail(errorEnvVarNotFound)
	}
	c.setLastError(0)
	return copyOutString(c, v, c.arg(1), c.arg(2), wide)
}

func setEnvironmentVariable(c *call, name, value string, del bool) error {
	p := c.p
	env := p.envList()
	out := env[:0:0]
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); ok && strings.EqualFold(k, name) {
			continue
		}
		out = append(out, e)
	}
	if !del {
		out = append(out, name+"="+value)
	}
	p.win32.envVars = out
	return c.ret(1)
}

// getStartupInfo fills a STARTUPINFO (104 bytes): cb, then zeroes, with
// the standard handles at 0x50/0x58/0x60.
func getStartupInfo(c *call) error {
	b := make([]byte, 104)
	binary.LittleEndian.PutUint32(b, 104)
	binary.LittleEndian.PutUint64(b[0x50:], stdInputHandle)
	binary.LittleEndian.PutUint64(b[0x58:], stdOutputHandle)
	binary.LittleEndian.PutUint64(b[0x60:], stdErrorHandle)
	c.wbytes(c.arg(0), b)
	return c.ret(0)
}
