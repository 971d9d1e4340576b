/* faults: raises the guest fault named by argv[1] in its own function,
 * so a test can check the signal and the exact instruction.
 *   ill   -> ud2                  (SIGILL)
 *   div   -> integer divide by 0  (SIGFPE)
 *   int3  -> an int3 in the code  (SIGTRAP)
 *   exec  -> a call through NULL  (SIGSEGV at pc 0) */
#include <stdio.h>
#include <string.h>

volatile int zero;

__attribute__((noinline)) int do_ill(void)
{
	__builtin_trap();
	return 1;
}

__attribute__((noinline)) int do_div(int x)
{
	return x / zero;
}

__attribute__((noinline)) int do_int3(void)
{
	__asm__ volatile("int3");
	return 3;
}

__attribute__((noinline)) int do_exec(void)
{
	int (*volatile fn)(void) = 0;
	return fn();
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	printf("fault: %s\n", what);
	if (!strcmp(what, "ill"))
		return do_ill();
	if (!strcmp(what, "div"))
		return do_div(7);
	if (!strcmp(what, "int3"))
		return do_int3() + 40;
	if (!strcmp(what, "exec"))
		return do_exec();
	return 0;
}
