// Package testkit is what the tests of every package share, so that each
// policy exists once:
//
//   - the tool policy: a test that needs an external tool (gdb, lldb,
//     qemu, mingw, clang, llvm-readobj, Wine's DLLs, libc6-dbg...) calls
//     RequireTool, RequireFile or Missing. Without the tool the test skips
//     with a reason, except when the environment sets
//     RSPSTUB_REQUIRE_TOOLS=1 (CI does): then it fails, so a green CI run
//     means every end-to-end test and every oracle comparison really ran.
//     An oracle that finds nothing to compare calls Missing too, rather
//     than logging.
//   - golden files (Golden), rewritten by `go test -update`;
//   - fixture builders: BuildPE (mingw gcc/g++, clang's MinGW and MSVC
//     targets), BuildELF (gcc, for QEMU user and the ELF unwinder),
//     BuildWith (any compiler command), BuildQEMUKernel (the qemu-system
//     guest) and Fixture (several build steps in a folder of their own),
//     all cached per test process in one folder that a TestMain removes
//     with Cleanup; Stub builds cmd/rspstub;
//   - one fake memory (Memory): sparse regions, reads like io.ReaderAt
//     with a uint64 address and short counts at the end of a region;
//   - the real clients: GDB, LLDB (with LLDBEnv, the one lookup of the
//     Python path Debian's lldb needs);
//   - one way to start a stub on a fixture for every backend (Start with a
//     Backend: Unicorn with the synth or the wine userland, QEMU user,
//     QEMU system; StartStub and StartQEMUStub with more flags;
//     StartCommand for any other command line that listens, Launch for
//     one the stub may refuse, LaunchUnder for a stub under strace), as a
//     StubProc that gives its address, output, process id and exit code;
//     RunStub runs a command that ends by itself (rspstub run PROGRAM). Any rsp.Target (a backend's
//     target, a fake) is served in-process by rsp/rsptest's Start, which
//     also holds the contract test of rsp.Target (TestTarget). Another
//     vendor's stub to compare with (gdbserver, lldb-server) is started
//     by StartPeer. Package rsp's own tests, which cannot import rsptest,
//     serve their fakes on a TCPPair.
//
// testkit imports none of the project's packages, so the tests inside
// any package (rsp, unwind, guest, the backends) can use it without an
// import cycle.
package testkit
