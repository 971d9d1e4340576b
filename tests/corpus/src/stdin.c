/* stdin: reads its standard input to the end: line, word and byte
 * counts, each line reversed, and a sum of the numbers found. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

int main(void) {
	char line[256];
	int lines = 0, words = 0;
	long bytes = 0, sum = 0;
	while (fgets(line, sizeof line, stdin)) {
		bytes += (long)strlen(line);
		line[strcspn(line, "\r\n")] = 0;
		lines++;
		int inword = 0;
		for (char *p = line; *p; p++) {
			if (isspace((unsigned char)*p))
				inword = 0;
			else if (!inword) {
				inword = 1;
				words++;
			}
		}
		long v;
		int used;
		for (char *p = line; *p;) {
			if (sscanf(p, "%ld%n", &v, &used) == 1) {
				sum += v;
				p += used;
			} else {
				p++;
			}
		}
		size_t n = strlen(line);
		for (size_t i = 0; i < n / 2; i++) {
			char c = line[i];
			line[i] = line[n - 1 - i];
			line[n - 1 - i] = c;
		}
		printf("%3d: %s\n", lines, line);
	}
	printf("lines %d words %d bytes %ld sum %ld eof %d\n", lines, words, bytes, sum, feof(stdin) != 0);
	return lines == 0 ? 1 : 0;
}
