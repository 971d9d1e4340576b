// Package ucwin is the embedded backend: a Windows x64 program, loaded
// by the guest package, running in libunicorn through emulator/unicorn,
// and presented to the protocol engine as an rsp.Target.
//
// The emulator stops before each emulated Windows API entry point (a
// "trap"); Resume serves those in Go and goes on, so the debugger only
// sees stops that mean something to it. Resuming from an API entry
// performs the call first, which makes a single step over an API one
// step. Guest faults become signals with a human description (sent to
// LLDB as `description:` and to GDB's console); a call to an API the
// guest model does not implement stops with SIGSYS naming the function.
//
// With Config.Record the execution is recorded for time travel
// (timetravel.go): positions, snapshots, reverse steps and continues by
// re-execution from the start or from automatic checkpoints, served as
// rsp.Reverser through RSPTarget.
//
// Analysts' outputs: Minidump and WriteMinidump (minidump.go) take the
// stopped process as a Windows minidump; Catch (monitor catch) and
// Config.TraceAPI share breakpoints the target sets for itself at the
// functions the program imports and at the return addresses of traced
// calls (apihooks.go, prototypes in apiproto.go); Config.Coverage
// records the executed blocks and writes drcov at Close (coverage.go).
//
// The process views (library list, vFile of module images, exec file,
// TEBs, monitor commands) are served by the layer above, package
// debuggee, from what this target reports in source.go; this package
// imports neither debuggee nor monitor.
package ucwin
