package tests

import (
	"regexp"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/stretchr/testify/assert"
)

// TestLLDBLoadsDLLs: LLDB 14 loads the system DLLs from the library list
// (issue 16 item 6), so its own bt goes past mainCRTStartup through
// KERNEL32!BaseThreadInitThunk to ntdll!RtlUserThreadStart. The synth
// userland's DLLs exist only in guest memory (LLDB reads them from
// there); Wine's are files on this machine, which LLDB opens, so their
// frames have Wine's file and line.
func TestLLDBLoadsDLLs(t *testing.T) {
	testkit.Tool(t, "lldb")
	exe := testkit.BuildPE(t, demoSrc, testkit.MinGW, "-O0", "-g")
	for _, land := range []string{"synth", "wine"} {
		t.Run(land, func(t *testing.T) {
			if land == "wine" {
				testkit.NeedWine(t)
			}
			stub := testkit.StartStub(t, "--userland", land, exe)
			out := testkit.LLDB(t, exe, stub.Addr, "breakpoint set --name d", "continue",
				"script print('@@images')", "image list", "script print('@@bt')", "bt", "script print('@@end')", "kill")
			t.Logf("lldb:\n%s", out)
			images := between(out, "@@images", "@@bt")
			bt := between(out, "@@bt", "@@end")
			assert.Regexp(t, `(?i)kernel32\.dll`, images)
			assert.Regexp(t, `(?i)ntdll\.dll`, images)
			assert.Regexp(t, `(?s)demo[-0-9a-f]*\.exe`+"`"+`d\(x=4\).*demo[-0-9a-f]*\.exe`+"`"+`main.*mainCRTStartup.*(?i:kernel32\.dll)`+"`"+`BaseThreadInitThunk.*(?i:ntdll\.dll)`+"`"+`RtlUserThreadStart`, bt)
			if land == "wine" {
				assert.Regexp(t, regexp.MustCompile("kernel32\\.dll`BaseThreadInitThunk.* at thread\\.c:\\d+"), bt)
			}
			// The program stays the file LLDB was given: its breakpoint
			// and its DWARF survive the library list.
			assert.Contains(t, out, "stop reason = breakpoint 1.1")
		})
	}
}
