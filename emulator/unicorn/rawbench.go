package unicorn

/*
#include <stdlib.h>
#include "machine.h"
*/
import "C"

import "unsafe"

// rawRun runs code at 0x10000 on a bare libunicorn instance with no hooks:
// the baseline the overhead benchmarks compare the Machine against.
func rawRun(code []byte) error {
	if len(code) == 0 {
		return nil
	}
	return ucErr("raw run", C.rs_raw_run(unsafe.Pointer(&code[0]), C.size_t(len(code))))
}

// abortNow calls abort() outside any run: TestForeignAbort checks that the
// machine's SIGABRT handler leaves such an abort to Go's handler.
func abortNow() { C.abort() }
