/* readline: reads one line from stdin and echoes it; the time-travel
 * tests check that a replay reads the same bytes (emulator/ucwin).
 * Build: x86_64-w64-mingw32-gcc -O0 -g -o readline.exe readline.c */
#include <stdio.h>
#include <string.h>

char line[128];

int main(void)
{
	if (!fgets(line, sizeof line, stdin))
		strcpy(line, "(nothing)\n");
	printf("got %s", line);
	return (int)strlen(line);
}
