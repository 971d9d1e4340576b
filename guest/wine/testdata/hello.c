#include <stdio.h>
#include <windows.h>
int main(int argc, char **argv) {
    DWORD n;
    WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), "hello from WriteFile\n", 21, &n, NULL);
    printf("hello from printf, argc=%d argv0=%s\n", argc, argv[0]);
    return 42;
}
