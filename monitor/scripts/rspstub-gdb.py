# rspstub's GDB frame unwinder: Windows x64 frames for any GDB with Python.
#
# Debian's gdb has no Windows ABI: it unwinds PE code only where DWARF CFI
# exists and stops at the first frame without it (the system DLLs). This
# script asks the stub for its .pdata walk ("monitor bt -json", one qRcmd
# per stop, on first use) and gives GDB each caller's rip, rsp and
# nonvolatile registers, so GDB's own bt, frame N, up/down and
# "info registers" of caller frames show what Windows would compute.
#
#   (gdb) source rspstub-gdb.py        # or: rspstub gdb-script > rspstub-gdb.py
#   (gdb) target remote :1234
#   (gdb) bt
#
# "rspstub-unwinder off" / "on" toggles it; frames the stub does not know
# fall back to GDB's own unwinders. bt ends at the thread's first frame
# (RtlUserThreadStart): the stub's walk says where the stack ends
# ("end" in monitor bt -json), and GDB's own unwinders, which would go on
# to a blank "0x0 in ()" frame, are not shown past it. The script also
# makes GDB read the Windows DLLs from the stub (a DOS-based target file
# system), so that GDB's own frame N, up and down name their frames.

import json

import gdb
from gdb.FrameDecorator import FrameDecorator
from gdb.unwinder import Unwinder, register_unwinder

_CALLER_REGS = ("rip", "rsp", "rbx", "rbp", "rsi", "rdi", "r12", "r13", "r14", "r15")


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class RspstubUnwinder(Unwinder):
    def __init__(self):
        super(RspstubUnwinder, self).__init__("rspstub")
        self._walks = {}  # thread id -> frames (None: the stub had none)

    def invalidate(self, *_):
        self._walks = {}

    def _walk(self):
        # The walk of the thread GDB is unwinding: "-thread N" names it,
        # for stubs with several threads (the wine userland); a stub that
        # does not know the prefix is asked without it. Walks are kept per
        # thread until the next stop.
        try:
            tid = gdb.selected_thread().ptid[1]
        except Exception:
            tid = 0
        if tid not in self._walks:
            frames = None
            cmds = ["monitor bt -json"]
            if tid:
                cmds.insert(0, "monitor -thread %d bt -json" % tid)
            for cmd in cmds:
                try:
                    out = gdb.execute(cmd, to_string=True)
                    start = out.index("{")
                    walk = json.loads(out[start:])
                    frames = walk["frames"]
                    if walk.get("end") == "zero return address" and frames:
                        frames[-1]["outermost"] = True
                    break
                except Exception:
                    continue
            self._walks[tid] = frames  # None: not an rspstub target, or no thread
        return self._walks[tid] or []

    def __call__(self, pending):
        try:
            pc = int(pending.read_register("rip"))
            sp = int(pending.read_register("rsp"))
        except Exception:
            return None
        frames = self._walk()
        for i, f in enumerate(frames[:-1]):
            if int(f["pc"], 16) != pc or int(f["sp"], 16) != sp:
                continue
            caller = frames[i + 1]
            start = pc - int(f.get("offset", "0x0"), 16)
            info = pending.create_unwind_info(_FrameId(gdb.Value(int(caller["sp"], 16)), gdb.Value(start)))
            for name in _CALLER_REGS:
                v = caller["regs"].get(name)
                if v is None:
                    continue
                t = pending.read_register(name).type
                info.add_saved_register(name, gdb.Value(int(v, 16)).cast(t))
            return info
        return None


class _Named(FrameDecorator):
    """Names frames GDB has no symbols for (the synthesized system DLLs,
    shellcode) with the stub's module!symbol, and frames GDB names with a
    Microsoft C++ name it cannot demangle (?name@scope@@...) with the
    stub's demangled one."""

    def function(self):
        name = super(_Named, self).function()
        if isinstance(name, str) and not name.startswith("?"):
            return name
        try:
            fr = self.inferior_frame()
            pc, sp = int(fr.pc()), int(fr.read_register("rsp"))
        except Exception:
            return name
        for f in _unwinder._walk():
            if int(f["pc"], 16) != pc or int(f["sp"], 16) != sp:
                continue
            mod = f.get("module", "")
            for ext in (".dll", ".exe"):
                if mod.lower().endswith(ext):
                    mod = mod[: -len(ext)]
            if "symbol" in f:
                return mod + "!" + f["symbol"]  # demangled; "mangled" has the raw name
            if mod:
                return mod + "+" + f["rva"]
            return "??"  # outside every module: shellcode, JIT code
        return name


class _FrameFilter(object):
    def __init__(self):
        self.name = "rspstub"
        self.priority = 100
        self.enabled = True
        gdb.frame_filters[self.name] = self

    def filter(self, frames):
        return _upto_outermost(map(_Named, frames))


def _upto_outermost(frames):
    # GDB's own unwinders go on past a thread's first frame (its return
    # address is 0) and show a blank "0x0 in ()" frame: stop where the
    # stub's walk says the stack ends.
    for f in frames:
        yield f
        try:
            fr = f.inferior_frame()
            pc, sp = int(fr.pc()), int(fr.read_register("rsp"))
        except Exception:
            continue
        for w in _unwinder._walk():
            if w.get("outermost") and int(w["pc"], 16) == pc and int(w["sp"], 16) == sp:
                return


# A Windows thread's stack goes on past main into the C runtime and the
# system DLLs (mainCRTStartup, BaseThreadInitThunk, RtlUserThreadStart), as
# Visual Studio shows it; GDB stops at main and at the entry point unless
# told otherwise.
gdb.execute("set backtrace past-main on")
gdb.execute("set backtrace past-entry on")

# The library list names Windows paths ("C:\\dir\\x.dll"). GDB takes them for
# absolute paths, and reads the files from the stub (vFile), only on a
# DOS-based target file system; GDB without a Windows ABI assumes Unix
# ones, does not load the DLLs ("Could not load shared library symbols")
# and names no frame in them. Libraries listed before this line are
# loaded again.
gdb.execute("set target-file-system-kind dos-based")
try:
    if gdb.selected_inferior().pid > 0:
        gdb.execute("nosharedlibrary", to_string=True)
        gdb.execute("sharedlibrary", to_string=True)
except gdb.error:
    pass

_unwinder = RspstubUnwinder()
_FrameFilter()
register_unwinder(None, _unwinder, replace=True)
for _ev in (gdb.events.stop, gdb.events.cont, gdb.events.exited, gdb.events.memory_changed,
            gdb.events.register_changed, gdb.events.new_objfile):
    _ev.connect(_unwinder.invalidate)


class _Toggle(gdb.Command):
    """rspstub-unwinder on|off: use the stub's Windows x64 unwinder for GDB's frames."""

    def __init__(self):
        super(_Toggle, self).__init__("rspstub-unwinder", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        _unwinder.enabled = arg.strip() != "off"
        _unwinder.invalidate()
        gdb.invalidate_cached_frames()
        print("rspstub unwinder " + ("on" if _unwinder.enabled else "off"))


_Toggle()
