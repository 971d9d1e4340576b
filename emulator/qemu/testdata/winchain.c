/*
 * winchain.c: the program of the Windows guest (winguest.S), a
 * freestanding PE32+ image whose functions need .pdata to unwind: -O2
 * without frame pointers, locals on the stack, nonvolatile registers
 * saved in the prologs. Built at test time with
 *   x86_64-w64-mingw32-gcc -O2 -fomit-frame-pointer -ffreestanding -nostdlib
 *     -Wl,--image-base,0x800000 -Wl,--file-alignment,0x1000
 *     -Wl,--section-alignment,0x1000 -Wl,--disable-dynamicbase
 *     -Wl,-e,entry -o chain.exe winchain.c
 * File and section alignment are equal, so the file is its own memory
 * image: the guest copies it to 0x800000 as it is. The functions are
 * exported so that their names are in guest memory too.
 */
#define EXPORT __declspec(dllexport) __attribute__((noinline))

volatile long sink = 1; /* initialized: no .bss, so the file layout is the memory layout */

EXPORT long d(long x)
{
	volatile long loc[6];
	for (int i = 0; i < 6; i++)
		loc[i] = x * i;
	sink = loc[5];
	return loc[3] + 1;
}

EXPORT long c(long x)
{
	long k1 = x * 3, k2 = x ^ 0x55, k3 = sink;
	long v = d(x + 1);
	return v + k1 * k2 + k3;
}

EXPORT long b(long x)
{
	long k1 = x + 7, k2 = x * x;
	long v = c(x + 1);
	sink = k1;
	return v + k2 + k1;
}

EXPORT long a(long x)
{
	volatile char buf[40];
	long k1 = x - 1;
	buf[0] = (char)x;
	long v = b(x + 1);
	return v + k1 + buf[0];
}

/* The entry point: kernel32.dll's BaseThreadInitThunk calls it. */
EXPORT long entry(long phase)
{
	long k = phase * 100;
	long v = a(phase);
	return v + k;
}
