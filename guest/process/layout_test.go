package process

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
)

// TestStructLayoutAgainstMinGWHeaders compiles static assertions that our
// offsets equal offsetof() in mingw-w64's winternl.h/winnt.h. Fields that
// header hides in Reserved arrays (StackBase of the TEB is NT_TIB's, the
// BaseDllName...) are covered by the neighbours it does name.
func TestStructLayoutAgainstMinGWHeaders(t *testing.T) {
	cc := testkit.RequireTool(t, "x86_64-w64-mingw32-gcc")
	defs := map[string]int{
		"OFF_TEB_EXCEPTIONLIST": TEBExceptionList, "OFF_TEB_STACKBASE": TEBStackBase,
		"OFF_TEB_STACKLIMIT": TEBStackLimit, "OFF_TEB_SELF": TEBSelf, "OFF_TEB_PEB": TEBPEB,
		"OFF_TEB_TLSSLOTS": TEBTLSSlots, "OFF_TEB_TLSEXPANSION": TEBTLSExpansion,
		"OFF_PEB_LDR": PEBLdr, "OFF_PEB_PARAMS": PEBProcessParameters, "OFF_PEB_BEINGDEBUGGED": PEBBeingDebugged,
		"OFF_LDR_INMEMORYORDER": LdrInMemoryOrder, "OFF_LTE_INMEMORYORDER": LTEInMemoryOrderLinks,
		"OFF_LTE_DLLBASE": LTEDllBase, "OFF_LTE_FULLDLLNAME": LTEFullDllName,
		"OFF_LTE_TIMEDATESTAMP": LTETimeDateStamp, "OFF_RPP_IMAGEPATHNAME": RPPImagePathName,
		"OFF_RPP_COMMANDLINE": RPPCommandLine,
	}
	args := []string{"-fsyntax-only"}
	for k, v := range defs {
		args = append(args, fmt.Sprintf("-D%s=%#x", k, v))
	}
	args = append(args, "testdata/layout.c")
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("layout check failed: %v\n%s", err, out)
	}
}
