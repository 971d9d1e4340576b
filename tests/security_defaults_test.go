package tests

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// Security defaults (issue 9): where the stub listens, what vFile
// serves, and what guest strings do to the stub's own log.

// startListen runs `rspstub serve --listen ADDR exe` and returns its
// stderr once it listens (the stub is then killed) or has exited.
func startListen(t *testing.T, addr, exe string) (stderr string, exitCode int) {
	t.Helper()
	stub := testkit.Launch(t, "serve", "--listen", addr, exe)
	if stub.Addr != "" {
		stub.Signal(os.Kill)
	}
	code := stub.ExitCode(t, 30*time.Second)
	return stub.Stderr(), code
}

func TestSecurityListen(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/spin.c", testkit.MinGW, "-O2")
	for _, addr := range []string{":0", ":1234", "1234"} {
		out, code := startListen(t, addr, exe)
		assert.Equal(t, 2, code, "--listen %q: exit code, want 2 (usage)\n%s", addr, out)
		assert.NotContains(t, out, "listening on", "--listen %q", addr)
		if addr != "1234" {
			assert.Contains(t, out, "has no host", "--listen %q: the error does not say the host is missing", addr)
		}
	}
	const warning = "non-loopback address"
	out, _ := startListen(t, "0.0.0.0:0", exe)
	assert.Contains(t, out, warning, "--listen 0.0.0.0:0: no warning")
	assert.Contains(t, out, "level=WARN", "--listen 0.0.0.0:0: no warning")
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		out, _ := startListen(t, addr, exe)
		assert.Contains(t, out, "listening on", "--listen %s", addr)
		assert.NotContains(t, out, warning, "--listen %s: want no warning", addr)
	}
	// The default is loopback.
	r := testkit.RunStub(t, time.Minute, nil, "serve", "-h")
	assert.Zero(t, r.Code, "serve -h: exit code\n%s%s", r.Stdout, r.Stderr)
	assert.Contains(t, r.Stdout+r.Stderr, `(default "127.0.0.1:1234")`, "serve -h: the default listen address is not loopback")
}

// TestSecurityVFile: vFile opens the guest's modules by the names the
// library list gives, and nothing else: no host path, no "..", no
// symlink, no file the guest did not load, no writes.
func TestSecurityVFile(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/spin.c", testkit.MinGW, "-O2")
	dir := t.TempDir()
	// A DLL folder holding a file the guest never loads, and symlinks.
	extra := filepath.Join(dir, "notloaded.dll")
	writeFile(t, extra, []byte("MZ not a loaded module"))
	for name, target := range map[string]string{"passwd.dll": "/etc/passwd", filepath.Base(exe) + ".lnk": "/etc/passwd"} {
		require.NoError(t, os.Symlink(target, filepath.Join(dir, name)))
	}
	stub := testkit.StartStub(t, "--dll-path", dir, exe)
	cl := dial(t, stub.Addr)
	libs, err := cl.ReadXfer("libraries", "")
	cl.Close()
	require.NoError(t, err)
	var list struct {
		Libs []struct {
			Name string `xml:"name,attr"`
		} `xml:"library"`
	}
	require.NoError(t, xml.Unmarshal(libs, &list), "library list\n%s", libs)
	require.NotEmpty(t, list.Libs, "library list\n%s", libs)
	exeBytes, err := os.ReadFile(exe)
	require.NoError(t, err)
	passwd, _ := os.ReadFile("/etc/passwd")

	c := rawDial(t, stub.Addr)
	defer c.Close()
	c.write("+")
	c.request("qSupported:swbreak+")
	open := func(name string, flags int) string {
		t.Helper()
		return c.request("vFile:open:" + hexString(name) + fmt.Sprintf(",%x,1a4", flags))
	}
	// Every module of the library list opens, by its listed name and
	// as GDB rewrites it (forward slashes), and reads as a PE image.
	for _, l := range list.Libs {
		for _, name := range []string{l.Name, strings.ReplaceAll(l.Name, `\`, "/")} {
			rep := open(name, 0)
			require.Regexp(t, `^F[^-]`, rep, "vFile:open %q (a guest module)", name)
			fd := rep[1:]
			data := c.request("vFile:pread:" + fd + ",200,0")
			_, body, _ := strings.Cut(data, ";")
			assert.True(t, strings.HasPrefix(body, "MZ"), "pread of module %q: %q, want a PE image", name, data[:min(len(data), 20)])
			assert.Equal(t, "F0", c.request("vFile:close:"+fd), "vFile:close %s", fd)
		}
	}
	// The program's own image is the file that was loaded, byte for
	// byte, whatever lies around it.
	rep := open(filepath.Base(exe), 0)
	require.False(t, strings.HasPrefix(rep, "F-1"), "vFile:open of the program's name: %q", rep)
	data := c.request("vFile:pread:" + rep[1:] + ",80,0")
	_, body, _ := strings.Cut(data, ";")
	assert.NotEmpty(t, body, "the program's image read back")
	assert.True(t, bytes.HasPrefix(exeBytes, []byte(body)), "the program's image read back differs from %s", exe)
	c.request("vFile:close:" + rep[1:])

	refused := []string{
		"/etc/passwd",
		"/etc/shadow",
		"/proc/self/environ",
		"/proc/self/mem",
		exe, // the program by its host path
		extra,
		"notloaded.dll",
		filepath.Join(dir, "passwd.dll"),
		"passwd.dll",
		filepath.Join(dir, filepath.Base(exe)+".lnk"),
		"../../../../../../etc/passwd",
		`..\..\..\..\..\..\etc\passwd`,
		"C:/windows/system32/../../../../etc/passwd",
		`C:\windows\system32\..\..\..\..\etc\passwd`,
		filepath.Base(exe) + "/../../../../etc/passwd",
		list.Libs[0].Name + `\..\..\..\..\etc\passwd`,
		"./" + filepath.Base(exe) + "/..",
		".",
		"..",
		"/",
		"",
		"passwd\x00.dll",
		"/etc/passwd\x00" + filepath.Base(exe),
		"file:///etc/passwd",
		"\\\\?\\C:\\..\\etc\\passwd",
	}
	for _, name := range refused {
		rep := open(name, 0)
		assert.True(t, strings.HasPrefix(rep, "F-1,"), "vFile:open %q: %q, want F-1,errno", name, rep)
	}
	// Nothing was opened: every descriptor is bad.
	for fd := 0; fd < 40; fd++ {
		rep := c.request(fmt.Sprintf("vFile:pread:%x,1000,0", fd))
		assert.Equal(t, "F-1,9", rep[:min(len(rep), 40)], "vFile:pread on fd %d after the refused opens, want EBADF", fd)
		if len(passwd) > 8 {
			require.NotContains(t, rep, string(passwd[:8]), "/etc/passwd was served")
		}
	}
	// Writes: refused, even for a module.
	for _, flags := range []int{1, 2, 0x201, 0x601} {
		rep := open(list.Libs[0].Name, flags)
		assert.True(t, strings.HasPrefix(rep, "F-1,"), "vFile:open %q with flags %#x: %q, want F-1,errno", list.Libs[0].Name, flags, rep)
	}
	for _, p := range []string{"vFile:pwrite:0,0,abc", "vFile:unlink:" + hexString(extra), "vFile:readlink:" + hexString(filepath.Join(dir, "passwd.dll"))} {
		rep := c.request(p)
		assert.True(t, strings.HasPrefix(rep, "F-1,"), "%s: %q, want F-1,errno", p, rep)
	}
	_, err = os.Stat(extra)
	assert.NoError(t, err, "vFile:unlink removed a host file")
}

// TestSecurityGuestEscapes: guest strings with terminal escape sequences
// reach the stub's log (stderr) escaped; the guest's stdout is its own.
func TestSecurityGuestEscapes(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/escape.c", testkit.MinGW, "-O1")
	for _, flags := range [][]string{nil, {"--log-packets"}} {
		stub := testkit.StartStub(t, append(flags, exe)...)
		var console bytes.Buffer
		c, err := rsp.Dial(stub.Addr, rsp.WithTimeout(20*time.Second), rsp.WithConsole(&console))
		require.NoError(t, err)
		st, err := c.Continue()
		require.NoError(t, err, "run the guest to its end\nstderr:\n%s", stub.Stderr())
		require.Equal(t, rsp.StopExited, st.Kind, "run the guest to its end: %+v\nstderr:\n%s", st, stub.Stderr())
		require.Zero(t, st.ExitCode, "the guest's exit code")
		// The monitor echoes nothing raw either (an unknown command
		// named by guest-like text).
		c.Monitor("\x1b]0;pwned-mon\x07")
		c.Close()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stub.Stderr(), "exiting") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		log := stub.Stderr()
		for _, want := range []string{"pwned-ods", "pwned-dll"} {
			assert.Contains(t, log, want, "%v: the log never mentions %s: the logging path under test did not run\n%s", flags, want, log)
		}
		// U+009B is the 8-bit CSI (the rune; a lone byte 0x9b in the
		// string would make IndexAny look for U+FFFD instead).
		if i := strings.IndexAny(log, "\x1b\x07\u009b"); i >= 0 {
			assert.Fail(t, "a raw control character in the stub's log", "%v: at %d: %q", flags, i, log[max(0, i-80):min(len(log), i+40)])
		}
		assert.Contains(t, stub.Stdout(), "\x1b[2J\x1b]0;pwned\x07", "%v: the guest's stdout lost its bytes: %q", flags, stub.Stdout())
		assert.Contains(t, console.String(), "\x1b]0;pwned\x07", "%v: the debugger console lost the guest's output: %q", flags, console.String())
	}
}

// TestSecurityHostFilesTraced runs the stub under strace while a client
// tries every way to reach a host file (vFile with host paths, "..",
// symlinks and unloaded files; monitor commands given host paths): the
// stub opens nothing but the guest's image and its own runtime files,
// and creates, writes, renames or removes nothing.
func TestSecurityHostFilesTraced(t *testing.T) {
	strace := testkit.Tool(t, "strace")
	exe := testkit.BuildPE(t, "tests/testdata/spin.c", testkit.MinGW, "-O2")
	dir := t.TempDir()
	extra := filepath.Join(dir, "notloaded.dll")
	writeFile(t, extra, []byte("MZ not a loaded module"))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "passwd.dll")))
	trace := filepath.Join(dir, "trace.txt")
	stub := testkit.LaunchUnder(t, []string{strace, "-f", "-qq", "-o", trace,
		"-e", "trace=open,openat,openat2,creat,unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat,symlink,symlinkat,link,linkat,truncate,chmod,fchmodat"},
		"serve", "--userland", "synth", "--listen", "127.0.0.1:0", "--dll-path", dir, exe)
	if stub.Addr == "" {
		out, _ := os.ReadFile(trace)
		if testkit.RequireTools() {
			require.FailNow(t, "the stub under strace exited", "%v\n%s\n%s", stub.Err(), stub.Stderr(), out)
		}
		t.Skipf("cannot trace the stub here: %v\n%.500s", stub.Err(), out)
	}
	addr := stub.Addr

	c := rawDial(t, addr)
	c.write("+")
	c.request("qSupported:swbreak+")
	for _, name := range []string{"/etc/passwd", "/etc/shadow", "/proc/self/environ", exe, extra, "notloaded.dll",
		filepath.Join(dir, "passwd.dll"), "passwd.dll", "../../../../../../etc/passwd", `C:\windows\..\..\..\etc\passwd`,
		filepath.Base(exe) + "/../../../etc/passwd"} {
		rep := c.request("vFile:open:" + hexString(name) + ",0,0")
		assert.True(t, strings.HasPrefix(rep, "F-1,"), "vFile:open %q: %q", name, rep)
		for _, flags := range []string{"1", "2", "241", "641"} { // O_WRONLY, O_RDWR, |O_CREAT|O_TRUNC, |O_EXCL
			rep := c.request("vFile:open:" + hexString(name) + "," + flags + ",1ff")
			assert.True(t, strings.HasPrefix(rep, "F-1,"), "vFile:open %q flags %s: %q", name, flags, rep)
		}
		c.request("vFile:unlink:" + hexString(name))
		c.request("vFile:readlink:" + hexString(name))
	}
	// Every monitor command, given host paths.
	for _, cmdline := range []string{"help /etc/passwd", "bt /etc/passwd", "bt -json /etc/passwd", "frame /etc/passwd",
		"args /etc/passwd", "modules /etc/passwd", "teb /etc/passwd", "peb /etc/passwd", "memmap /etc/passwd",
		"unwind-info /etc/passwd", "unwind-info ../../../../etc/passwd", "unwind-info notloaded.dll!x",
		"unwind-info " + extra + "!x", "verify-unwind /etc/passwd", "bt > " + filepath.Join(dir, "out.txt"),
		"modules -json " + filepath.Join(dir, "out.json"), "unwind-info main", "bt -full"} {
		c.send("qRcmd," + hexString(cmdline))
		var out strings.Builder
		for i := 0; i < 100000; i++ {
			p := c.reply()
			if !isOutput(p) {
				break
			}
			out.WriteString(p)
		}
		assert.NotContains(t, out.String(), hexString("root:x:0:0"), "monitor %s printed /etc/passwd", cmdline)
	}
	c.send("k")
	c.Close()
	require.True(t, stub.Wait(30*time.Second), "the stub did not exit after k")

	b, err := os.ReadFile(trace)
	require.NoError(t, err)
	opened := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		// PID syscall(args) = result
		_, call, ok := strings.Cut(line, " ")
		call = strings.TrimSpace(call)
		if !ok || strings.Contains(line, "= -1 ") || strings.Contains(line, "resumed>") && !strings.Contains(line, "=") {
			continue
		}
		name, _, _ := strings.Cut(call, "(")
		q1 := strings.IndexByte(call, '"')
		q2 := strings.IndexByte(call[q1+1:], '"')
		if q1 < 0 || q2 < 0 {
			continue
		}
		path := call[q1+1 : q1+1+q2]
		switch name {
		case "open", "openat", "openat2", "creat":
			if strings.Contains(call, "O_WRONLY") || strings.Contains(call, "O_RDWR") || strings.Contains(call, "O_CREAT") || name == "creat" {
				assert.Fail(t, "the stub opened a file for writing", "%s: %s", path, line)
			}
			opened[path] = true
		default:
			assert.Fail(t, "the stub changed the file system", line)
		}
	}
	var paths []string
	for p := range opened {
		paths = append(paths, p)
		switch {
		case p == exe, strings.HasPrefix(p, "/lib/"), strings.HasPrefix(p, "/usr/lib/"), p == "/etc/ld.so.cache",
			slices.Contains([]string{"maps", "cgroup", "mountinfo", "auxv", "status", "stat"}, strings.TrimPrefix(p, "/proc/self/")),
			strings.HasPrefix(p, "/sys/"), strings.HasPrefix(p, "/proc/sys/"), p == "/etc/localtime":
			// The image, and what the Go runtime, libc and the network
			// and time packages read for themselves.
		default:
			assert.Fail(t, "the stub opened a file it should not", p)
		}
	}
	assert.True(t, opened[exe], "the trace shows no open of the guest image %s: is it parsed right?\n%.2000s", exe, b)
	slices.Sort(paths)
	t.Logf("files the stub opened: %v", paths)
	_, err = os.Stat(filepath.Join(dir, "out.txt"))
	assert.Error(t, err, "a monitor command created a host file")
}
