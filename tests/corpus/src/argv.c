/* argv: the arguments as the CRT split them (argv[0] is left out: it
 * holds a path that depends on where the program was started). */
#include <stdio.h>
#include <string.h>
#include <windows.h>

int main(int argc, char **argv) {
	printf("argc %d\n", argc);
	for (int i = 1; i < argc; i++)
		printf("argv[%d] = [%s] (%u)\n", i, argv[i], (unsigned)strlen(argv[i]));
	int wargc;
	LPWSTR *wargv = CommandLineToArgvW(GetCommandLineW(), &wargc);
	printf("CommandLineToArgvW agrees on the count: %d\n", wargc == argc);
	for (int i = 1; i < wargc && i < argc; i++) {
		char narrow[256];
		WideCharToMultiByte(CP_ACP, 0, wargv[i], -1, narrow, sizeof narrow, NULL, NULL);
		if (strcmp(narrow, argv[i]) != 0)
			printf("argument %d differs: [%s]\n", i, narrow);
	}
	LocalFree(wargv);
	return argc;
}
