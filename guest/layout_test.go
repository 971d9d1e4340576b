package guest

import (
	"fmt"
	"os/exec"
	"testing"
)

// TestStructLayoutAgainstMinGWHeaders compiles static assertions that our
// offsets equal offsetof() in mingw-w64's winternl.h/winnt.h. Fields that
// header hides in Reserved arrays (StackBase of the TEB is NT_TIB's, the
// BaseDllName...) are covered by the neighbours it does name.
func TestStructLayoutAgainstMinGWHeaders(t *testing.T) {
	cc := needTool(t, "x86_64-w64-mingw32-gcc")
	defs := map[string]int{
		"OFF_TEB_EXCEPTIONLIST": tebExceptionList, "OFF_TEB_STACKBASE": tebStackBase,
		"OFF_TEB_STACKLIMIT": tebStackLimit, "OFF_TEB_SELF": tebSelf, "OFF_TEB_PEB": tebPEB,
		"OFF_TEB_TLSSLOTS": tebTLSSlots, "OFF_TEB_TLSEXPANSION": tebTLSExpansion,
		"OFF_PEB_LDR": pebLdr, "OFF_PEB_PARAMS": pebProcessParameters, "OFF_PEB_BEINGDEBUGGED": pebBeingDebugged,
		"OFF_LDR_INMEMORYORDER": ldrInMemoryOrder, "OFF_LTE_INMEMORYORDER": lteInMemoryOrderLinks,
		"OFF_LTE_DLLBASE": lteDllBase, "OFF_LTE_FULLDLLNAME": lteFullDllName,
		"OFF_LTE_TIMEDATESTAMP": lteTimeDateStamp, "OFF_RPP_IMAGEPATHNAME": rppImagePathName,
		"OFF_RPP_COMMANDLINE": rppCommandLine,
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
