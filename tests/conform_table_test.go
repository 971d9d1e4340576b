package tests

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// The command table (issue 16): scripted sessions of Debian's gdb,
// x86_64-w64-mingw32-gdb and lldb 14 against rspstub, side by side with
// gdbserver and lldb-server debugging the same program (conf.c) built for
// Linux. Each row is one session per target, from a fresh stub. A row
// "works" on a target when the debugger's output matches the row's
// expectation. The rule: no row that works against the peer may fail
// against rspstub, except where the row says why it cannot apply to a
// target (na). The whole table is logged.
//
// Targets: rspstub's Unicorn backend with the synthesized userland
// (synth) and with Wine's DLLs (wine), running the Windows build, and
// rspstub's QEMU backend in front of qemu-user (qemu), running the Linux
// build. The peers: gdbserver for both GDBs (mingw-gdb's rows are played
// against gdbserver with Debian's gdb: mingw-gdb does not debug Linux
// programs), lldb-server for lldb.
//
// Debian's gdb sessions against a Windows program first set
// `target-file-system-kind dos-based`, as `rspstub debug` and the
// unwinder script do: GDB then reads the DLLs the library list names.

type tableRow struct {
	name    string
	clients []string // "gdb", "mingw-gdb", "lldb"
	cmds    []string // after connecting; LINE_X is conf.c's line with that marker, CORE a file
	want    string   // regexp: the row works
	// extended plays the session over `target extended-remote` (gdb).
	extended bool
	// na: the targets ("synth", "wine", "qemu") where the row cannot
	// work, and why. Not played there.
	na map[string]string
}

var windowsNA = func(why string) map[string]string { return map[string]string{"synth": why, "wine": why} }

var conformTable = []tableRow{
	{name: "break, continue", clients: []string{"gdb", "mingw-gdb"},
		cmds: []string{"break count", "continue"}, want: `Breakpoint 1, count \(i=0\)`},
	{name: "bt", clients: []string{"gdb", "mingw-gdb"},
		cmds: []string{"break count", "continue", "bt"}, want: `(?s)#0\s+count \(i=0\).*#1\s+0x[0-9a-f]+ in main \(`},
	{name: "next stops at a breakpoint inside the line", clients: []string{"gdb"},
		cmds: []string{"break conf.c:LINE_STEP", "continue", "break *midline", "next"}, want: `Breakpoint 2, 0x[0-9a-f]+ in stepped `},
	{name: "step stops at a breakpoint inside the line", clients: []string{"gdb"},
		cmds: []string{"break conf.c:LINE_STEP", "continue", "break *midline", "step"}, want: `Breakpoint 2, 0x[0-9a-f]+ in stepped `},
	{name: "until stops at a breakpoint inside the line", clients: []string{"gdb"},
		cmds: []string{"break conf.c:LINE_STEP", "continue", "break *midline", "until"}, want: `Breakpoint 2, 0x[0-9a-f]+ in stepped `},
	{name: "step into a call", clients: []string{"gdb"},
		cmds: []string{"break conf.c:LINE_CALL", "continue", "step"}, want: `stepped \(x=2\) at \S*conf.c:\d+`},
	{name: "finish returns the value", clients: []string{"gdb"},
		cmds: []string{"break square", "continue", "finish"}, want: `Value returned is \$1 = 4`},
	{name: "watchpoint", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "delete", "watch total", "continue"}, want: `Old value = 0\s+New value = 1`},
	{name: "conditional breakpoint, target evaluation", clients: []string{"gdb"},
		cmds: []string{"break count if i == 2", "continue", "info breakpoints"}, want: `(?s)Breakpoint 1, count \(i=2\).*target evals`},
	{name: "tbreak, run to exit", clients: []string{"gdb"},
		cmds: []string{"tbreak count", "continue", "continue"}, want: `(?s)Temporary breakpoint 1, count \(i=0\).*exited with code 031`},
	{name: "print an expression", clients: []string{"gdb", "mingw-gdb"},
		cmds: []string{"break count", "continue", "print counter + total"}, want: `\$1 = 21`},
	{name: "set var", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "set var total = 100", "print total"}, want: `\$1 = 100`},
	{name: "x/s", clients: []string{"gdb"},
		cmds: []string{"break conf.c:LINE_PRINT", "continue", "x/s buffer"}, want: `<buffer>:\s+"hello"`},
	{name: "info registers", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "info registers rip cs ss"}, want: `(?s)rip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <count\+\d+>.*cs\s+0x33.*ss\s+0x2b`},
	{name: "stepi", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "stepi", "info registers rip"}, want: `rip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <count\+\d+>`},
	{name: "info frame", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "info frame"}, want: `Stack level 0, frame at 0x[0-9a-f]+:\s+rip = 0x[0-9a-f]+ in count`},
	{name: "up", clients: []string{"gdb"},
		cmds: []string{"break square", "continue", "up"}, want: `#1\s+0x[0-9a-f]+ in main \(`},
	{name: "info threads", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "info threads"}, want: `\*\s+1\s+(Thread|process|LWP) `},
	{name: "info inferiors shows a pid", clients: []string{"gdb"},
		cmds: []string{"info inferiors"}, want: `\*\s+1\s+process \d+`},
	{name: "kill", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "kill"}, want: `\[Inferior 1 \(process \d+\) killed\]`},
	{name: "record, next, reverse-next", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "record", "next", "reverse-next", "record stop"}, want: `Process record is stopped`,
		na: windowsNA("GDB's record full needs its architecture's process_record, which amd64 has only in the GNU/Linux ABI (it decodes Linux system calls); GDB has none for Windows")},
	{name: "run again (extended-remote)", clients: []string{"gdb"}, extended: true,
		cmds: []string{"break count", "run", "run"}, want: `(?s)Breakpoint 1, count \(i=0\).*Breakpoint 1, count \(i=0\)`,
		na: map[string]string{"qemu": "QEMU's gdbstub cannot start its program again (no vRun)"}},
	{name: "catch syscall", clients: []string{"gdb"},
		cmds: []string{"catch syscall write", "continue", "continue"}, want: `(?s)Catchpoint 1 \(call to syscall write\).*Catchpoint 1 \(returned from syscall write\)`,
		na: windowsNA("a Windows program makes NT system calls (through ntdll); GDB's catch syscall has Linux tables only; monitor catch syscall NtNAME stops at them instead (TestCatchGDB)")},
	{name: "call a function", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "call square(5)"}, want: `\$1 = 25`,
		na: windowsNA("Debian's gdb has no Windows x64 calling convention (arguments go to rdi, rsi...); see the mingw-gdb rows")},
	{name: "info proc mappings", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "info proc mappings"}, want: `Start Addr\s+End Addr`,
		na: map[string]string{
			"synth": "GDB implements info proc only in its GNU/Linux ABI, which amd64 enables only for a description with org.gnu.gdb.i386.linux; claiming it for a Windows process would switch Debian's gdb to SVR4 libraries and Linux system calls (monitor memmap lists the regions)",
			"wine":  "as synth",
			"qemu":  "GDB reads /proc/PID/maps over vFile; qemu-user 7.2's gdbstub has no host I/O, and the program's map is QEMU's private page table: the host's /proc/<qemu>/maps mixes it with QEMU's own mappings",
		}},
	{name: "gcore", clients: []string{"gdb"},
		cmds: []string{"break count", "continue", "gcore CORE"}, want: `Saved corefile`,
		na: map[string]string{
			"synth": "GDB writes core files only with the GNU/Linux ABI (as info proc), and no ABI of GDB 13 writes a Windows one (the minidump work covers that)",
			"wine":  "as synth",
			"qemu":  "GDB's Linux gcore reads /proc/PID/smaps or maps over vFile, which qemu-user 7.2 cannot serve (see info proc mappings)",
		}},

	{name: "inferior call (Windows ABI)", clients: []string{"mingw-gdb"},
		cmds: []string{"break count", "continue", "call square(5)", "print square(2)+1"}, want: `(?s)\$1 = 25.*\$2 = 5`},
	{name: "printf allocates a string in the guest", clients: []string{"mingw-gdb"},
		cmds: []string{"break count", "continue", `printf "%s|%d\n", "xy", add(2,3)`}, want: `xy\|5`},
	{name: "shared libraries read", clients: []string{"gdb", "mingw-gdb"},
		cmds: []string{"break count", "continue", "info sharedlibrary"}, want: `(?m)^0x[0-9a-f]+\s+0x[0-9a-f]+\s+Yes`},

	{name: "breakpoint, continue", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue"}, want: `stop reason = breakpoint 1\.1`},
	{name: "bt", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue", "bt"}, want: "frame #1: 0x[0-9a-f]+ \\S+`main"},
	{name: "frame variable", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue", "frame variable i"}, want: `\(int\) i = 0`},
	{name: "register read rflags", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue", "register read rflags"}, want: `(rflags|eflags) = 0x[0-9a-f]+`},
	{name: "expression calls a function", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue", "expression square(3)"}, want: `\(int\) \$0 = 9`},
	{name: "thread step-over", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue", "thread step-over"}, want: `stop reason = step over`},
	{name: "conditional breakpoint", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count -c 'i == 2'", "continue"}, want: "count\\(i=2\\)"},
	{name: "watchpoint", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue", "watchpoint set variable total", "breakpoint delete 1", "continue"}, want: `Watchpoint 1 hit`},
	{name: "memory read", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue", "memory read --size 4 --format x --count 1 &counter"}, want: `0x[0-9a-f]+: 0x00000015`},
	{name: "kill", clients: []string{"lldb"},
		cmds: []string{"breakpoint set -n count", "continue", "process kill"}, want: `exited with status = 9`},
}

// conformBuilds are the two builds of conf.c.
type conformBuilds struct{ pe, elf string }

func buildConfELF(t *testing.T) string {
	t.Helper()
	return testkit.BuildELF(t, confSrc, "-O0", "-g")
}

// playRow plays one row with one client against one target and returns
// the debugger's output.
func playRow(t *testing.T, r tableRow, client, target string, b conformBuilds) string {
	t.Helper()
	windows := target == "synth" || target == "wine"
	exe := b.elf
	if windows {
		exe = b.pe
	}
	var addr string
	switch target {
	case "synth":
		addr = testkit.StartStub(t, exe).Addr
	case "wine":
		addr = testkit.StartWineStub(t, exe).Addr
	case "qemu":
		addr = testkit.StartQEMUStub(t, "qemu-x86_64", exe).Addr
	case "lldb-server":
		addr = testkit.StartPeer(t, "lldb-server", "gdbserver", testkit.PeerAddr, "--", exe)
	case "gdbserver":
		if r.extended {
			addr = testkit.StartPeer(t, "gdbserver", "--multi", testkit.PeerAddr)
		} else {
			addr = testkit.StartPeer(t, "gdbserver", "--once", testkit.PeerAddr, exe)
		}
	}
	cmds := make([]string, len(r.cmds))
	for i, c := range r.cmds {
		for _, m := range []string{"LINE_STEP", "LINE_LOOP", "LINE_CALL", "LINE_PRINT"} {
			c = strings.ReplaceAll(c, "conf.c:"+m, fmt.Sprintf("conf.c:%d", confLine(t, m)))
		}
		cmds[i] = strings.ReplaceAll(c, "CORE", filepath.Join(t.TempDir(), "core"))
	}
	if client == "lldb" {
		return testkit.LLDB(t, exe, addr, cmds...)
	}
	tool := "gdb"
	if client == "mingw-gdb" && windows {
		tool = "x86_64-w64-mingw32-gdb"
	}
	gdb := testkit.Tool(t, tool)
	args := []string{"-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off", "-ex", "set width 0"}
	if windows && tool == "gdb" {
		args = append(args, "-ex", "set target-file-system-kind dos-based")
	}
	args = append(args, "-ex", "file "+exe)
	if r.extended {
		args = append(args, "-ex", "target extended-remote "+addr)
		if target == "gdbserver" {
			args = append(args, "-ex", "set remote exec-file "+exe)
		}
	} else {
		args = append(args, "-ex", "target remote "+addr)
	}
	for _, c := range cmds {
		args = append(args, "-ex", c)
	}
	return testkit.Run(t, 2*time.Minute, nil, gdb, args...)
}

// TestCommandTable plays the table and fails on a row that works against
// the peer but not against rspstub. The verdicts are logged as a table.
func TestCommandTable(t *testing.T) {
	if testing.Short() {
		t.Skip("the command table plays about 130 debugger sessions (minutes)")
	}
	b := conformBuilds{pe: testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g"), elf: buildConfELF(t)}
	testkit.NeedWine(t)
	var mu sync.Mutex
	verdicts := map[string]map[string]string{} // row/client -> target -> verdict
	for _, r := range conformTable {
		for _, client := range r.clients {
			r, client := r, client
			key := client + ": " + r.name
			t.Run(key, func(t *testing.T) {
				t.Parallel()
				peer := "gdbserver"
				targets := []string{"synth", "wine", "qemu"}
				switch client {
				case "lldb":
					peer = "lldb-server"
				case "mingw-gdb":
					targets = []string{"synth", "wine"} // a Windows debugger
				}
				want := regexp.MustCompile(r.want)
				row := map[string]string{}
				peerOut := playRow(t, r, client, peer, b)
				peerOK := want.MatchString(peerOut) && !strings.Contains(peerOut, "internal-error")
				row[peer] = map[bool]string{true: "works", false: "fails"}[peerOK]
				for _, tg := range targets {
					if why, ok := r.na[tg]; ok {
						row[tg] = "n/a: " + why
						continue
					}
					out := playRow(t, r, client, tg, b)
					ok := want.MatchString(out) && !strings.Contains(out, "internal-error")
					row[tg] = map[bool]string{true: "works", false: "fails"}[ok]
					if peerOK {
						assert.True(t, ok, "%s works against %s but not against rspstub (%s):\n%s", key, peer, tg, out)
					}
					if !peerOK && !ok {
						t.Logf("%s fails against %s too (host or client limit):\n%s\n--- %s:\n%s", key, peer, out, peer, peerOut)
					}
				}
				mu.Lock()
				verdicts[key] = row
				mu.Unlock()
			})
		}
	}
	t.Cleanup(func() {
		keys := make([]string, 0, len(verdicts))
		for k := range verdicts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var sb strings.Builder
		sb.WriteString("| row | peer | synth | wine | qemu |\n|---|---|---|---|---|\n")
		for _, k := range keys {
			v := verdicts[k]
			p := v["gdbserver"] + v["lldb-server"]
			cell := func(s string) string {
				if s == "" {
					return "-"
				}
				if strings.HasPrefix(s, "n/a") {
					return "n/a"
				}
				return s
			}
			fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", k, p, cell(v["synth"]), cell(v["wine"]), cell(v["qemu"]))
		}
		t.Logf("command table:\n%s", sb.String())
	})
}
