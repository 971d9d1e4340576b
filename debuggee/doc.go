// Package debuggee is the debugged process as the debugger sees it, one
// layer above the backends: its library list, the files of its module
// images (vFile), its program file, the load address of a file (LLDB's
// qFileLoadAddress), each thread's TEB (qGetTIBAddr), and the monitor
// commands of package monitor.
//
// A backend (emulator/ucwin, emulator/qemu) reports the process through
// Source, in low-level terms only (internal/loaded.Module,
// internal/arch.Registers, plain values); it imports neither this
// package nor package monitor. New wraps the backend's rsp.Target into
// one Target whose optional interfaces are the layer's plus, through
// rsp.Unwrapper, the backend's own (breakpoints, threads, stepping...).
//
// Features are chosen per instance, from what the guest is (Source.GuestOS)
// and what the source serves, through rsp.FeatureGate, so each reply is
// honest for the guest actually served:
//
//	view                          windows   linux
//	qXfer:libraries (Windows)     yes       -
//	qGetTIBAddr                   yes       -
//	qXfer:libraries-svr4          -         yes (the backend's)
//	qXfer:auxv                    -         yes (the backend's)
//	vFile, qXfer:exec-file        when the source serves module images
//	qFileLoadAddress, monitor     yes       yes
//
// vFile serves only what the source's OpenImage serves: the guest's own
// module images, or files the user named (rspstub qemu --module); never
// another host file.
//
// The monitor follows the client's thread (Hg, or "-thread N" before the
// command) when the source implements ThreadChecker; otherwise the
// source's own notion of the current thread is used. Backend-specific
// commands (QEMU's "qemu", "threads", "status", "discovery") come from
// the source's optional Commander.
package debuggee
