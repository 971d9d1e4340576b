package testkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Root is the repository's top folder.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	workOnce sync.Once
	workDir  string
	workErr  error
)

// dir is a folder shared by all tests of this process for built artifacts.
func dir(t testing.TB) string {
	t.Helper()
	workOnce.Do(func() {
		workDir, workErr = os.MkdirTemp("", "rspstub-e2e-")
	})
	require.NoError(t, workErr, "the folder of built fixtures")
	return workDir
}

var (
	stubOnce sync.Once
	stubPath string
	stubErr  error
)

// Cleanup removes the folder of built fixtures; a package's TestMain
// calls it after m.Run (the fixtures are shared by all its tests).
func Cleanup() {
	if workDir != "" {
		os.RemoveAll(workDir)
	}
}

// Stub builds cmd/rspstub once per test process and returns its path.
func Stub(t testing.TB) string {
	t.Helper()
	d := dir(t)
	stubOnce.Do(func() {
		stubPath = filepath.Join(d, "rspstub")
		cmd := exec.Command("go", "build", "-o", stubPath, "./cmd/rspstub")
		cmd.Dir = Root()
		out, err := cmd.CombinedOutput()
		if err != nil {
			stubErr = fmt.Errorf("go build ./cmd/rspstub: %v\n%s", err, out)
		}
	})
	require.NoError(t, stubErr)
	return stubPath
}

// StartWineStub starts a stub running the wine userland.
func StartWineStub(t testing.TB, args ...string) *StubProc {
	t.Helper()
	NeedWine(t)
	return StartStub(t, append([]string{"--userland", "wine"}, args...)...)
}

// Backend is one way rspstub serves a guest; Start starts a stub of any
// of them on a fixture, so one scenario runs per backend.
type Backend string

const (
	UnicornSynth Backend = "unicorn-synth" // rspstub serve --userland synth PROGRAM.exe
	UnicornWine  Backend = "unicorn-wine"  // rspstub serve --userland wine PROGRAM.exe
	QEMUUser     Backend = "qemu-user"     // rspstub qemu -- qemu-x86_64 PROGRAM (a Linux program)
	QEMUSystem   Backend = "qemu-system"   // rspstub qemu -- qemu-system-x86_64 ... -kernel PROGRAM
)

// UnicornBackend is the Unicorn backend with the named userland, "synth"
// or "wine", for tests that loop over the userlands.
func UnicornBackend(userland string) Backend {
	return Backend("unicorn-" + userland)
}

// Backends lists every backend, for tests that run a scenario per backend.
var Backends = []Backend{UnicornSynth, UnicornWine, QEMUUser, QEMUSystem}

// Start starts a stub of backend b on program (a Windows .exe for the
// Unicorn userlands, a Linux program for QEMU user, a multiboot kernel
// such as BuildQEMUKernel's for QEMU system); args go to the program
// (Unicorn and QEMU user). Missing tools skip or fail (RequireTool).
func Start(t testing.TB, b Backend, program string, args ...string) *StubProc {
	t.Helper()
	switch b {
	case UnicornSynth:
		return StartStub(t, append([]string{"--userland", "synth", program}, args...)...)
	case UnicornWine:
		return StartWineStub(t, append([]string{program}, args...)...)
	case QEMUUser:
		return StartQEMUStub(t, append([]string{"qemu-x86_64", program}, args...)...)
	case QEMUSystem:
		return StartQEMUStub(t, QEMUSystemArgs(program, 1)...)
	}
	require.FailNow(t, "unknown backend", "%q", b)
	return nil
}

// QEMUSystemArgs is the QEMU command line that boots a multiboot kernel
// under TCG with cpus vCPUs and no devices.
func QEMUSystemArgs(kernel string, cpus int) []string {
	return []string{"qemu-system-x86_64", "-nographic", "-display", "none", "-no-reboot", "-m", "32",
		"-smp", fmt.Sprint(cpus), "-monitor", "none", "-serial", "none", "-parallel", "none", "-net", "none", "-kernel", kernel}
}

var (
	kernelOnce         sync.Once
	kernel32, kernel64 string
	kernelErr          error
)

// BuildQEMUKernel builds the qemu-system fixture, emulator/qemu/testdata/guest.S
// (a multiboot kernel that enters long mode and calls tick() forever), and
// returns the bootable elf32-i386 file and the ELF64 file with its
// symbols (tick, loop, counter, pml4).
func BuildQEMUKernel(t testing.TB) (boot, symbols string) {
	t.Helper()
	RequireAllTools(t, "gcc", "ld", "objcopy")
	d := dir(t)
	kernelOnce.Do(func() {
		src := filepath.Join(Root(), "emulator", "qemu", "testdata")
		for _, c := range [][]string{
			{"gcc", "-c", "-o", "guest.o", filepath.Join(src, "guest.S")},
			{"ld", "-m", "elf_x86_64", "-T", filepath.Join(src, "guest.ld"), "-o", "guest64.elf", "guest.o"},
			{"objcopy", "-O", "elf32-i386", "guest64.elf", "guest.elf"},
		} {
			cmd := exec.Command(c[0], c[1:]...)
			cmd.Dir = d
			if out, err := cmd.CombinedOutput(); err != nil {
				kernelErr = fmt.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
				return
			}
		}
		kernel32, kernel64 = filepath.Join(d, "guest.elf"), filepath.Join(d, "guest64.elf")
	})
	require.NoError(t, kernelErr)
	return kernel32, kernel64
}

// StubRun is how a finished rspstub command ended (RunStub).
type StubRun struct {
	Stdout, Stderr string
	Code           int // the exit code; -1 when a signal ended it
}

// RunStub runs `rspstub ARGS...` to its end (rspstub run PROGRAM,
// rspstub serve -h) with stdin as its standard input (nil: none) and
// returns its output and exit code; the test fails when it runs longer
// than timeout. Stubs that serve a debugger start with StartStub and the
// other starters above.
func RunStub(t testing.TB, timeout time.Duration, stdin io.Reader, args ...string) StubRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Stub(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "rspstub %s: no end within %v\nstdout:\n%s\nstderr:\n%s",
		strings.Join(args, " "), timeout, out.String(), errb.String())
	r := StubRun{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else {
		require.NoError(t, err, "rspstub %s", strings.Join(args, " "))
	}
	return r
}

// StubProc is a running stub (`rspstub serve` or `rspstub qemu`).
type StubProc struct {
	Addr string // what to give `target remote` / `gdb-remote`
	cmd  *exec.Cmd

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

var listenRE = regexp.MustCompile(`listening on ([^\s;]+)`)

// StartStub runs `rspstub serve --listen 127.0.0.1:0 ARGS...` and waits
// until it listens. The stub is killed when the test ends.
//
// Unless args choose one with --userland, the stub runs the synthesized
// userland: the end-to-end tests written before the wine userland check
// its module names and API traps; the wine userland's scenarios pass
// --userland wine (see StartWineStub).
func StartStub(t testing.TB, args ...string) *StubProc {
	t.Helper()
	chosen := false
	for _, a := range args {
		if strings.HasPrefix(a, "--userland") {
			chosen = true
		}
	}
	if !chosen {
		args = append([]string{"--userland", "synth"}, args...)
	}
	return StartCommand(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
}

// StartQEMUStub runs `rspstub qemu --listen 127.0.0.1:0 -- ARGV...` (a
// QEMU command line: qemu-x86_64 PROGRAM for a Linux program) and waits
// until it listens.
func StartQEMUStub(t testing.TB, argv ...string) *StubProc {
	t.Helper()
	Tool(t, argv[0])
	return StartCommand(t, append([]string{"qemu", "--listen", "127.0.0.1:0", "--"}, argv...)...)
}

// StartCommand runs `rspstub ARGS...`, a subcommand with all its flags
// (which must make it listen: --listen 127.0.0.1:0, say), and waits until
// it listens, for tests of command lines StartStub and StartQEMUStub do
// not write (rspstub qemu --connect ADDR, --module FILE@BASE). The stub
// is killed when the test ends.
func StartCommand(t testing.TB, args ...string) *StubProc {
	t.Helper()
	s := Launch(t, args...)
	require.NotEmpty(t, s.Addr, "rspstub %s exited before listening: %v\nstdout:\n%s\nstderr:\n%s",
		strings.Join(args, " "), s.err, s.Stdout(), s.Stderr())
	return s
}

// Launch is StartCommand for a command line the stub may refuse: it
// returns once the stub listens or has exited, whichever comes first;
// Addr is empty when it exited (ExitCode and Stderr say how).
func Launch(t testing.TB, args ...string) *StubProc {
	t.Helper()
	return startProc(t, append([]string{Stub(t)}, args...), false, 30*time.Second)
}

// LaunchUnder is Launch with the stub run under a wrapper command,
// `WRAPPER... rspstub ARGS...` (strace -f -o FILE, say): the wrapper is
// the process (Pid, Signal), and it and all it started are killed when
// the test ends (they run in a process group of their own). The stub
// may take up to 60 s to listen.
func LaunchUnder(t testing.TB, wrapper []string, args ...string) *StubProc {
	t.Helper()
	require.NotEmpty(t, wrapper, "LaunchUnder: no wrapper command")
	argv := append(append(append([]string(nil), wrapper...), Stub(t)), args...)
	return startProc(t, argv, true, 60*time.Second)
}

// Err is how the stub ended (exec.Cmd.Wait's error) once Wait has seen
// it exit, nil before.
func (s *StubProc) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

func startProc(t testing.TB, argv []string, group bool, timeout time.Duration) *StubProc {
	t.Helper()
	s := &StubProc{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	if group {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	outPipe, err := s.cmd.StdoutPipe()
	require.NoError(t, err)
	errPipe, err := s.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, s.cmd.Start(), "start %s", argv[0])
	addrc := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.copy(&s.stdout, outPipe, nil)
	}()
	go func() {
		defer wg.Done()
		s.copy(&s.stderr, errPipe, addrc)
	}()
	go func() {
		wg.Wait()
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if group {
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		} else {
			s.cmd.Process.Kill()
		}
		<-s.done
		if t.Failed() {
			t.Logf("stub stdout:\n%s\nstub stderr:\n%s", s.Stdout(), s.Stderr())
		}
	})
	select {
	case s.Addr = <-addrc:
	case <-s.done:
		select { // it may have listened just before it exited
		case s.Addr = <-addrc:
		default:
		}
	case <-time.After(timeout):
		require.FailNow(t, "rspstub did not start listening", "within %v\nstderr:\n%s", timeout, s.Stderr())
	}
	return s
}

func (s *StubProc) copy(dst *bytes.Buffer, r io.Reader, addrc chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		dst.WriteString(line)
		dst.WriteByte('\n')
		s.mu.Unlock()
		if addrc != nil {
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}
}

// Wait waits up to timeout for the stub to exit by itself and reports
// whether it did.
func (s *StubProc) Wait(timeout time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// ExitCode waits up to timeout for the stub to exit by itself and
// returns its exit code (-1 when a signal ended it); the test fails when
// it is still running.
func (s *StubProc) ExitCode(t testing.TB, timeout time.Duration) int {
	t.Helper()
	require.True(t, s.Wait(timeout), "rspstub did not exit within %v\nstderr:\n%s", timeout, s.Stderr())
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, s.err, "rspstub")
	return 0
}

// Pid is the stub's process id.
func (s *StubProc) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to the stub (os.Kill to end it at once).
func (s *StubProc) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Stdout is what the stub (that is, the guest) printed so far.
func (s *StubProc) Stdout() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdout.String()
}

// Stderr is the stub's log so far.
func (s *StubProc) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}
