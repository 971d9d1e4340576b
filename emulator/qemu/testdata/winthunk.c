/*
 * winthunk.c: a second module for the Windows guest, a DLL named
 * kernel32.dll whose BaseThreadInitThunk calls the program's entry, as
 * Windows starts a thread. Built at test time with
 *   x86_64-w64-mingw32-gcc -O2 -fomit-frame-pointer -ffreestanding -nostdlib
 *     -shared -Wl,--image-base,0xa00000 -Wl,--file-alignment,0x1000
 *     -Wl,--section-alignment,0x1000 -Wl,--disable-dynamicbase
 *     -Wl,-e,BaseThreadInitThunk -o kernel32.dll winthunk.c
 */
typedef long (*entry_fn)(long);

volatile long last = 1; /* no .bss: see winchain.c */

__declspec(dllexport) __attribute__((noinline)) long BaseThreadInitThunk(entry_fn fn, long phase)
{
	volatile long saved[3];
	saved[0] = phase;
	long r = fn(phase);
	last = r + saved[0];
	return r;
}
