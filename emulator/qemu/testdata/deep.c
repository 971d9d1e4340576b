/* deep.c: a call chain main -> a -> b -> c -> d for backtraces of a Linux
 * program under qemu-user (elf_test.go builds it with gcc -O0, and -O2
 * -fomit-frame-pointer, dynamic and static). c has a stack array so that
 * its frame is not just a return address. */
#include <stdio.h>

__attribute__((noinline)) int d(int x) {
	volatile int v = x * 3;
	printf("d %d\n", v);
	return v + 1;
}

__attribute__((noinline)) int c(int x) {
	volatile char buf[40];
	buf[x & 31] = (char)x;
	return d(x + buf[x & 31]) * 2;
}

__attribute__((noinline)) int b(int x) {
	int r = c(x + 1);
	return r + x;
}

__attribute__((noinline)) int a(int x) {
	int r = b(x * 2);
	return r - 1;
}

int main(int argc, char **argv) {
	(void)argv;
	return a(argc) == 12345;
}
