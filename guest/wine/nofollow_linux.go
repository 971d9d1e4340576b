package wine

import "syscall"

// noFollow makes opening a symbolic link fail: the sandbox never follows one.
const noFollow = syscall.O_NOFOLLOW
