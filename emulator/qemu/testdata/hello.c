// hello.c: the qemu-user fixture. Built at test time with
//   gcc -static -O0 -g -fno-pie -no-pie -o hello hello.c
// The tests break on bump, watch counter, and let it exit with code 7.
// With an argument it spins forever instead (the interrupt test).
#include <stdio.h>

volatile long counter;

__attribute__((noinline)) void bump(long n)
{
	counter += n;
}

int main(int argc, char **argv)
{
	(void)argv;
	while (argc > 1)
		bump(0);
	for (long i = 1; i <= 3; i++)
		bump(i);
	printf("counter=%ld\n", counter);
	return (int)counter + 1;
}
