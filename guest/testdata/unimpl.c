/* Calls an API rspstub does not implement (Beep). x86_64-w64-mingw32-gcc -O0 */
#include <windows.h>
#include <stdio.h>
int main(void) {
	puts("before");
	BOOL r = Beep(440, 10);
	printf("after %d\n", r);
	return 0;
}
