// Command guestcode measures what random bytes run as guest code do to
// the Unicorn machine: how many end the process (libunicorn 2.0.1 aborts
// on some encodings), and how many data faults stop at an instruction the
// fault decoder cannot prove (Stop.Inexact) or at a wrong one (compared
// with a run stepped one instruction at a time). It repeats issue 14's
// measurement (400 blobs of 48 random bytes run from VirtualAlloc'd
// memory) on the machine alone:
//
//	go run ./tests/guestcode                 # 400 blobs of 48 bytes, seed 1
//	go run ./tests/guestcode -n 2000 -exact  # with SetExactFaults(true)
//	go run ./tests/guestcode -decode         # without the fault-paging tables
//
// Each blob runs in a child process (this program again, with -one), so
// that an abort ends only that child; the program builds and runs the
// same way before the fix, where the children abort.
package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"time"

	"golang.org/x/arch/x86/x86asm"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
)

var (
	n      = flag.Int("n", 400, "blobs")
	size   = flag.Int("size", 48, "bytes per blob")
	seed   = flag.Int64("seed", 1, "random seed")
	exact  = flag.Bool("exact", false, "SetExactFaults(true), where the machine has it")
	decode = flag.Bool("decode", false, "SetFaultPaging(false), where the machine has it: faults placed by the decoder alone (paging is the default)")
	one    = flag.String("one", "", "run one blob (hex) and print its result line (internal)")
	show   = flag.Bool("v", false, "print every blob that aborted or stopped inexactly")
	stops  = flag.Int("stops", 1, "stops per blob: after a fault or an illegal instruction RIP moves past it and the run goes on")
)

// The address space of a small Windows process: the blob in
// VirtualAlloc'd memory (read, write, execute), a stack, and a data page;
// some registers point into them, as in a real process.
const (
	codeBase  = 0x40000000
	stackBase = 0x200000
	stackSize = 0x10000
	dataBase  = 0x300000
	dataSize  = 0x4000
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("guestcode: ")
	flag.Parse()
	if *one != "" {
		code, err := hex.DecodeString(*one)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(runOne(code))
		return
	}
	rng := rand.New(rand.NewSource(*seed))
	counts := map[string]int{}
	aborts := 0
	for i := 0; i < *n; i++ {
		blob := make([]byte, *size)
		rng.Read(blob)
		args := []string{"-one", hex.EncodeToString(blob), "-stops", fmt.Sprint(*stops)}
		if *exact {
			args = append(args, "-exact")
		}
		if *decode {
			args = append(args, "-decode")
		}
		out, err := exec.Command(os.Args[0], args...).Output()
		line := strings.TrimSpace(string(out))
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() || ee.ExitCode() == 2 {
					// Killed by SIGABRT, or Go's crash report (exit 2).
					aborts++
					if *show {
						fmt.Printf("blob %d aborted the process: %x\n", i, blob)
					}
					continue
				}
			}
			log.Fatalf("blob %d: %v (%s)", i, err, line)
		}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			var x int
			fmt.Sscan(v, &x)
			counts[k] += x
		}
		if *show && (strings.Contains(line, "inexact=1") || strings.Contains(line, "wrong=1")) {
			fmt.Printf("blob %d: %s: %x\n", i, line, blob)
		}
	}
	fmt.Printf("%d blobs of %d random bytes (seed %d, %d stop(s) each, exact faults %v, fault paging %v):\n", *n, *size, *seed, *stops, *exact, !*decode)
	fmt.Printf("  blobs that aborted the process: %d\n", aborts)
	fmt.Printf("  stops:                          %d\n", counts["stops"])
	fmt.Printf("  data faults:                    %d\n", counts["fault"])
	fmt.Printf("    inexact (flagged):            %d\n", counts["inexact"])
	fmt.Printf("    wrong and not flagged:        %d\n", counts["wrong"])
	fmt.Printf("    not compared (the stepped run stops elsewhere): %d\n", counts["uncompared"])
	for _, k := range []string{"untranslatable", "illegal", "fetch", "divide", "exception", "int3", "halt", "syscall", "interrupt", "other"} {
		if counts[k] > 0 {
			fmt.Printf("  %-31s %d\n", k+" stops:", counts[k])
		}
	}
}

// newMachine maps the address space and puts the blob at codeBase.
func newMachine(code []byte) *unicorn.Machine {
	m, err := unicorn.New()
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range []struct {
		addr, size uint64
		perm       arch.Perm
	}{
		{codeBase, 0x1000, arch.PermRead | arch.PermWrite | arch.PermExec},
		{stackBase, stackSize, arch.PermRW},
		{dataBase, dataSize, arch.PermRW},
	} {
		if err := m.Map(r.addr, r.size, r.perm); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := m.WriteMemory(codeBase, code); err != nil {
		log.Fatal(err)
	}
	for r, v := range map[arch.Reg]uint64{
		arch.RSP: stackBase + stackSize/2, arch.RBP: stackBase + stackSize/2 + 0x40,
		arch.RBX: dataBase + 0x100, arch.RSI: dataBase + 0x800, arch.RDI: dataBase + 0x1000,
		arch.RCX: 0x10, arch.RIP: codeBase,
	} {
		if err := m.SetReg(r, v); err != nil {
			log.Fatal(err)
		}
	}
	if e, ok := any(m).(interface{ SetExactFaults(bool) }); ok && *exact {
		e.SetExactFaults(true)
	}
	if p, ok := any(m).(interface{ SetFaultPaging(bool) error }); ok && *decode {
		if err := p.SetFaultPaging(false); err != nil {
			log.Fatal(err)
		}
	}
	return m
}

// runOne runs a blob for up to -stops stops and counts them, as
// key=value pairs: the kinds of stops, and for data faults whether the
// decoder flagged them and whether the PC agrees with a run stepped one
// instruction at a time from the same state (up to the fault).
func runOne(code []byte) string {
	m := newMachine(code)
	counts := map[string]int{}
	for i := 0; i < *stops; i++ {
		var before unicorn.Context
		if err := m.ReadContext(&before); err != nil {
			log.Fatal(err)
		}
		snapshot := make([]byte, 0x1000)
		m.ReadMemory(codeBase, snapshot)
		data := make([]byte, dataSize)
		m.ReadMemory(dataBase, data)
		stack := make([]byte, stackSize)
		m.ReadMemory(stackBase, stack)
		timer := time.AfterFunc(200*time.Millisecond, m.Interrupt)
		s := m.Run()
		timer.Stop()
		counts["stops"]++
		kind := kindOf(s)
		counts[kind]++
		if kind == "fault" {
			switch {
			case s.Inexact:
				counts["inexact"]++
			default:
				switch compareStepped(&before, snapshot, data, stack, s) {
				case "wrong":
					counts["wrong"]++
				case "uncompared":
					counts["uncompared"]++
				}
			}
		}
		if !resume(m, s, kind) {
			break
		}
	}
	var b strings.Builder
	for k, v := range counts {
		fmt.Fprintf(&b, "%s=%d ", k, v)
	}
	return b.String()
}

func kindOf(s unicorn.Stop) string {
	switch s.Reason {
	case unicorn.StopFault:
		if s.Access == arch.PermExec {
			return "fetch"
		}
		return "fault"
	case unicorn.StopIllegal:
		// Stop.Untranslatable exists only after the fix.
		if f := reflect.ValueOf(s).FieldByName("Untranslatable"); f.IsValid() && f.Bool() {
			return "untranslatable"
		}
		return "illegal"
	case unicorn.StopDivide:
		return "divide"
	case unicorn.StopException:
		return "exception"
	case unicorn.StopInt3:
		return "int3"
	case unicorn.StopHalt:
		return "halt"
	case unicorn.StopSyscall:
		return "syscall"
	case unicorn.StopInterrupt:
		return "interrupt"
	}
	return "other"
}

// resume moves RIP past the instruction of a fault, an illegal
// instruction or an exception, as a debugger user would, and reports
// whether to go on.
func resume(m *unicorn.Machine, s unicorn.Stop, kind string) bool {
	switch kind {
	case "fault", "illegal", "untranslatable", "divide", "exception":
	case "int3", "syscall":
		return true
	default:
		return false
	}
	var buf [15]byte
	n, _ := m.ReadMemory(s.PC, buf[:])
	size := 1
	if inst, err := x86asm.Decode(buf[:n], 64); err == nil && inst.Len > 0 {
		size = inst.Len
	}
	return m.SetReg(arch.RIP, s.PC+uint64(size)) == nil
}

// compareStepped steps a fresh machine, set to the state the run started
// from, one instruction at a time up to its first stop, and compares it
// with the fault s.
func compareStepped(before *unicorn.Context, code, data, stack []byte, s unicorn.Stop) string {
	st := newMachine(code)
	st.WriteMemory(dataBase, data)
	st.WriteMemory(stackBase, stack)
	if err := st.WriteContext(before); err != nil {
		return "uncompared"
	}
	var w unicorn.Stop
	for i := 0; i < 200000; i++ {
		if w = st.Step(); w.Reason != unicorn.StopStep {
			break
		}
	}
	switch {
	case w.Reason != unicorn.StopFault || w.Addr != s.Addr:
		return "uncompared"
	case w.PC != s.PC:
		return "wrong"
	}
	return "ok"
}
