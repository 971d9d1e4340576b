/* hello: the smallest hosted program, for start-up and memory figures
 * (tests/perf). Build: x86_64-w64-mingw32-gcc -O2 -o hello.exe hello.c
 * and, for gdbserver, gcc -O2 -no-pie -o hello hello.c */
#include <stdio.h>

int main(void)
{
	printf("hello, world\n");
	return 0;
}
