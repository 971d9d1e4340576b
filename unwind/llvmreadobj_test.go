package unwind

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var regUpper = [16]string{"RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
	"R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}

// llvmCode renders a code the way llvm-readobj --unwind prints it.
func llvmCode(u *UnwindInfo, c UnwindCode) string {
	s := fmt.Sprintf("0x%02X: ", c.CodeOffset)
	switch c.Op {
	case UWOP_PUSH_NONVOL:
		return s + "PUSH_NONVOL reg=" + regUpper[c.OpInfo]
	case UWOP_ALLOC_LARGE:
		return s + fmt.Sprintf("ALLOC_LARGE size=%d", c.Operand)
	case UWOP_ALLOC_SMALL:
		return s + fmt.Sprintf("ALLOC_SMALL size=%d", c.Operand)
	case UWOP_SET_FPREG:
		return s + fmt.Sprintf("SET_FPREG reg=%s, offset=0x%X", regUpper[u.FrameRegister], 16*int(u.FrameOffset))
	case UWOP_SAVE_NONVOL:
		return s + fmt.Sprintf("SAVE_NONVOL reg=%s, offset=0x%X", regUpper[c.OpInfo], c.Operand)
	case UWOP_SAVE_NONVOL_FAR:
		return s + fmt.Sprintf("SAVE_NONVOL_FAR reg=%s, offset=0x%X", regUpper[c.OpInfo], c.Operand)
	case UWOP_SAVE_XMM128:
		return s + fmt.Sprintf("SAVE_XMM128 reg=XMM%d, offset=0x%X", c.OpInfo, c.Operand)
	case UWOP_SAVE_XMM128_FAR:
		return s + fmt.Sprintf("SAVE_XMM128_FAR reg=XMM%d, offset=0x%X", c.OpInfo, c.Operand)
	case UWOP_PUSH_MACHFRAME:
		if c.OpInfo != 0 {
			return s + "PUSH_MACHFRAME errcode=yes"
		}
		return s + "PUSH_MACHFRAME errcode=no"
	}
	return s + opNames[c.Op]
}

// ourRendering renders an UNWIND_INFO as the fields llvm-readobj prints.
func ourRendering(u *UnwindInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Version: %d\nPrologSize: %d\n", u.Version, u.SizeOfProlog)
	if u.FrameRegister != 0 {
		fmt.Fprintf(&b, "FrameRegister: %s (0x%X)\nFrameOffset: 0x%X\n", regUpper[u.FrameRegister], u.FrameRegister, u.FrameOffset)
	} else {
		b.WriteString("FrameRegister: -\nFrameOffset: -\n")
	}
	fmt.Fprintf(&b, "UnwindCodeCount: %d\n", u.CountOfCodes)
	for _, c := range u.Codes {
		b.WriteString(llvmCode(u, c) + "\n")
	}
	return b.String()
}

// parseReadobj extracts, per UNWIND_INFO address, the primary UNWIND_INFO
// fields llvm-readobj prints. Indentation tells the levels apart: a
// RuntimeFunction at 2 spaces, its fields at 4, its UnwindInfo's at 6,
// codes at 8; a chained parent is nested deeper and ignored.
func parseReadobj(out []byte) map[uint64]string {
	res := map[uint64]string{}
	var cur uint64
	var b strings.Builder
	flush := func() {
		if cur != 0 {
			res[cur] = b.String()
		}
		b.Reset()
		cur = 0
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimLeft(raw, " ")
		indent := len(raw) - len(line)
		switch {
		case indent == 2 && strings.HasPrefix(line, "RuntimeFunction {"):
			flush()
		case indent == 4 && strings.HasPrefix(line, "UnwindInfoAddress:"):
			if i := strings.LastIndex(line, "(0x"); i >= 0 {
				cur, _ = strconv.ParseUint(strings.TrimSuffix(line[i+3:], ")"), 16, 64)
			}
		case indent == 6 && (strings.HasPrefix(line, "Version:") || strings.HasPrefix(line, "PrologSize:") ||
			strings.HasPrefix(line, "FrameRegister:") || strings.HasPrefix(line, "FrameOffset:") ||
			strings.HasPrefix(line, "UnwindCodeCount:")):
			b.WriteString(line + "\n")
		case indent == 8 && strings.HasPrefix(line, "0x"):
			b.WriteString(line + "\n")
		}
	}
	flush()
	return res
}

// TestLLVMReadobjAgreement compares our decoding of every function with
// llvm-readobj --unwind, on a sample of Wine DLLs (all of them with
// RSPSTUB_FULL_CORPUS=1).
func TestLLVMReadobjAgreement(t *testing.T) {
	readobj := testkit.RequireTool(t, "llvm-readobj")
	files, _ := filepath.Glob(filepath.Join(wineDir, "*.dll"))
	if len(files) == 0 {
		testkit.Missing(t, "Wine PE corpus not installed (%s)", wineDir)
	}
	if os.Getenv("RSPSTUB_FULL_CORPUS") != "1" {
		var sample []string
		for _, f := range files {
			switch filepath.Base(f) {
			case "ntdll.dll", "kernelbase.dll", "msvcrt.dll", "jscript.dll":
				sample = append(sample, f)
			}
		}
		files = sample
	}
	compared, mismatched := 0, 0
	for _, path := range files {
		mod, b, err := mapPE(path)
		if err != nil {
			continue
		}
		m := &fakeMem{}
		m.Map(mod.Base, b)
		img, err := ReadImage(m, mod)
		if err != nil || len(img.Functions) == 0 {
			continue
		}
		out, err := exec.Command(readobj, "--unwind", path).Output()
		if err != nil {
			t.Errorf("llvm-readobj %s: %v", path, err)
			continue
		}
		ref := parseReadobj(out)
		for i, fn := range img.Functions {
			if img.missing[i] || fn.Indirect() {
				continue
			}
			info, err := img.UnwindInfo(m, fn.UnwindData)
			if err != nil {
				t.Errorf("%s %#x: %v", filepath.Base(path), fn.BeginAddress, err)
				continue
			}
			want, ok := ref[mod.Base+uint64(fn.UnwindData)]
			if !ok {
				t.Errorf("%s function %#x: llvm-readobj does not list UNWIND_INFO %#x", filepath.Base(path), fn.BeginAddress, fn.UnwindData)
				continue
			}
			compared++
			if got := ourRendering(info); got != want {
				mismatched++
				if mismatched <= 5 {
					t.Errorf("%s function %#x:\nours:\n%s\nllvm-readobj:\n%s", filepath.Base(path), fn.BeginAddress, got, want)
				}
			}
		}
	}
	t.Logf("llvm-readobj agreement: %d files, %d functions compared, %d mismatches", len(files), compared, mismatched)
	if compared == 0 {
		t.Fatal("nothing compared")
	}
}
