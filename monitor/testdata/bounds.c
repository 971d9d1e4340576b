/* bounds: hidden() loses its symbol (the test runs objcopy --strip-symbol
 * hidden), as a static constructor in a stripped library has none; its
 * .pdata entry still bounds it. A PC in hidden() must not be named
 * before+0x..., the nearest symbol below it.
 * Build: x86_64-w64-mingw32-gcc -O0 -o bounds.exe bounds.c */
__attribute__((noinline)) int before(int x) { return x * 3 + 1; }
__attribute__((noinline)) int hidden(int x) { volatile int y = x; return before(y) + 2; }
int main(int argc, char **argv) { (void)argv; return hidden(argc) > 0 ? 0 : 1; }
