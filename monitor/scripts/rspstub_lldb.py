# rspstub's LLDB command: "rspstub-bt [ARGS]" prints the stub's Windows x64
# backtrace ("monitor bt ARGS": -full, -json, -n N), and "rspstub CMD"
# runs any monitor command, without the packet echo of
# "process plugin packet monitor".
#
#   (lldb) command script import rspstub_lldb.py   # or: rspstub lldb-script > rspstub_lldb.py
#   (lldb) gdb-remote 1234
#   (lldb) rspstub-bt -full

import lldb


def _selected_tid(debugger):
    try:
        return debugger.GetSelectedTarget().GetProcess().GetSelectedThread().GetThreadID()
    except Exception:
        return 0


def _monitor(debugger, command, result):
    ci = debugger.GetCommandInterpreter()
    ret = lldb.SBCommandReturnObject()
    # The selected thread's view ("-thread N"), for stubs with several
    # threads; a stub that does not know the prefix is asked without it.
    tid = _selected_tid(debugger)
    if tid:
        ci.HandleCommand("process plugin packet monitor -thread %d %s" % (tid, command), ret)
        if not ret.Succeeded() or any(l.lstrip().startswith("response: E") for l in (ret.GetOutput() or "").splitlines()):
            ret = lldb.SBCommandReturnObject()
            tid = 0
    if not tid:
        ci.HandleCommand("process plugin packet monitor " + command, ret)
    if not ret.Succeeded():
        result.SetError(ret.GetError() or "monitor command failed")
        return
    lines = (ret.GetOutput() or "").splitlines()
    # Drop lldb's echo of the exchange ("  packet: qRcmd,..." / "response: OK").
    keep = [l for l in lines if not l.lstrip().startswith(("packet: qRcmd", "response: "))]
    failed = any(l.lstrip().startswith("response: E") for l in lines)
    result.AppendMessage("\n".join(keep))
    if failed:
        result.SetError("the monitor command failed")


def rspstub_bt(debugger, command, result, internal_dict):
    """Print the stub's Windows x64 backtrace (monitor bt [-full] [-json] [-n N])."""
    _monitor(debugger, ("bt " + command).strip(), result)


def rspstub_cmd(debugger, command, result, internal_dict):
    """Run an rspstub monitor command (rspstub help lists them)."""
    _monitor(debugger, command.strip() or "help", result)


def __lldb_init_module(debugger, internal_dict):
    debugger.HandleCommand("command script add -f %s.rspstub_bt rspstub-bt" % __name__)
    debugger.HandleCommand("command script add -f %s.rspstub_cmd rspstub" % __name__)
