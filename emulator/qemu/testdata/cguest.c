/* cguest.c: a 5-deep call chain in a kernel for QEMU system mode (boot
 * code in cguest.S): c_main -> level1 -> ... -> level5, over and over.
 * A breakpoint on level5 stops under six C frames. Each level uses its
 * callee's result, so no call becomes a tail jump. */
volatile unsigned long ticks;

__attribute__((noinline)) unsigned long level5(unsigned long x) { ticks++; return x + ticks; }
__attribute__((noinline)) unsigned long level4(unsigned long x) { return level5(x + 4) * 2; }
__attribute__((noinline)) unsigned long level3(unsigned long x) { return level4(x + 3) * 3; }
__attribute__((noinline)) unsigned long level2(unsigned long x) { return level3(x + 2) * 5; }
__attribute__((noinline)) unsigned long level1(unsigned long x) { return level2(x + 1) * 7; }

void c_main(void)
{
	unsigned long sum = 0;
	for (;;)
		sum += level1(sum & 0xff);
}
