/* The headers that declare the synthesized DLLs' exports: TestExportArity
 * compiles this file with gcc -aux-info to read each function's prototype.
 * _UCRT (set by the test for a second pass) adds the ucrt's own names. */
#include <windows.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <time.h>
#include <locale.h>
#include <signal.h>
#include <float.h>
#include <process.h>
#include <malloc.h>
#include <wchar.h>
#include <io.h>
#include <fenv.h>
#include <search.h>
#include <conio.h>
#include <errno.h>
#include <corecrt_startup.h>
