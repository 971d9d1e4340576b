# Loaded by gdb_test.go into gdb at a breakpoint: prints the registers,
# every frame's pc and sp (and callee-saved registers) as GDB's own
# unwinder computes them, and dumps the stack to the file named by the
# convenience variable $dumpfile.
import gdb

mask = (1 << 64) - 1
path = gdb.parse_and_eval("$dumpfile").string()
for line in gdb.execute("info proc mappings", to_string=True).splitlines():
    if "[stack]" in line:
        end = int(line.split()[1], 16)
sp = int(gdb.parse_and_eval("$sp")) & mask
gdb.execute("dump binary memory %s %d %d" % (path, sp, end))
print("STACK %x %x" % (sp, end))
for r in ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"]:
    print("REG %s %x" % (r, int(gdb.parse_and_eval("$" + r)) & mask))
f = gdb.newest_frame()
n = 0
while f is not None and n < 64:
    vals = []
    for r in ["rsp", "rbx", "rbp", "r12", "r13", "r14", "r15"]:
        try:
            v = f.read_register(r)
            vals.append("%s=%x" % (r, int(v) & mask) if not v.is_optimized_out else r + "=?")
        except gdb.error:
            vals.append(r + "=?")
    print("FRAME %d %x %s %s" % (n, f.pc(), f.name(), " ".join(vals)))
    f = f.older()
    n += 1
