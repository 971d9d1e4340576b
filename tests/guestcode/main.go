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

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
)

var (
	n     = flag.Int("n", 400, "blobs")
	size  = flag.Int("size", 48, "bytes per blob")
	seed  = flag.Int64("seed", 1, "random seed")
	exact = flag.Bool("exact", false, "SetExactFaults(true), where the machine has it")
	one   = flag.String("one", "", "run one blob (hex) and print its result line (internal)")
	show  = flag.Bool("v", false, "print every blob that aborted or stopped inexactly")
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
	var aborts, inexact, wrong, faults int
	for i := 0; i < *n; i++ {
		blob := make([]byte, *size)
		rng.Read(blob)
		args := []string{"-one", hex.EncodeToString(blob)}
		if *exact {
			args = append(args, "-exact")
		}
		cmd := exec.Command(os.Args[0], args...)
		out, err := cmd.Output()
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
		f := strings.Fields(line)
		if len(f) == 0 {
			log.Fatalf("blob %d: no result", i)
		}
		counts[f[0]]++
		if f[0] == "fault" {
			faults++
			if strings.Contains(line, "inexact") {
				inexact++
				if *show {
					fmt.Printf("blob %d inexact: %s: %x\n", i, line, blob)
				}
			} else if strings.Contains(line, "wrong") {
				wrong++
				fmt.Printf("blob %d WRONG: %s: %x\n", i, line, blob)
			}
		}
	}
	fmt.Printf("%d blobs of %d random bytes (seed %d, exact faults %v):\n", *n, *size, *seed, *exact)
	fmt.Printf("  process aborts:                 %d\n", aborts)
	fmt.Printf("  data faults:                    %d\n", faults)
	fmt.Printf("    inexact (flagged):            %d\n", inexact)
	fmt.Printf("    wrong and not flagged:        %d\n", wrong)
	for _, k := range []string{"illegal", "untranslatable", "fetch", "divide", "exception", "int3", "halt", "syscall", "interrupt", "other"} {
		if counts[k] > 0 {
			fmt.Printf("  first stop %-19s %d\n", k+":", counts[k])
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
	return m
}

// runOne runs a blob to its first stop and describes it: the stop kind,
// and for a data fault whether the decoder flagged it and whether its PC
// agrees with a run stepped one instruction at a time.
func runOne(code []byte) string {
	m := newMachine(code)
	timer := time.AfterFunc(200*time.Millisecond, m.Interrupt)
	s := m.Run()
	timer.Stop()
	kind := "other"
	switch s.Reason {
	case unicorn.StopFault:
		kind = "fault"
		if s.Access == arch.PermExec {
			kind = "fetch"
		}
	case unicorn.StopIllegal:
		kind = "illegal"
		// Stop.Untranslatable exists only after the fix.
		if f := reflect.ValueOf(s).FieldByName("Untranslatable"); f.IsValid() && f.Bool() {
			kind = "untranslatable"
		}
	case unicorn.StopDivide:
		kind = "divide"
	case unicorn.StopException:
		kind = "exception"
	case unicorn.StopInt3:
		kind = "int3"
	case unicorn.StopHalt:
		kind = "halt"
	case unicorn.StopSyscall:
		kind = "syscall"
	case unicorn.StopInterrupt:
		kind = "interrupt"
	}
	if kind != "fault" {
		return kind
	}
	line := fmt.Sprintf("fault pc %#x addr %#x", s.PC, s.Addr)
	if s.Inexact {
		return line + " inexact"
	}
	// The stepped run: every step runs one instruction, so its fault PC
	// is exact.
	st := newMachine(code)
	var w unicorn.Stop
	for i := 0; i < 200000; i++ {
		if w = st.Step(); w.Reason != unicorn.StopStep {
			break
		}
	}
	switch {
	case w.Reason != unicorn.StopFault || w.Addr != s.Addr:
		return line + fmt.Sprintf(" (stepping stops with %v at %#x)", w.Reason, w.PC)
	case w.PC != s.PC:
		return line + fmt.Sprintf(" wrong: stepping faults at %#x", w.PC)
	}
	return line
}
