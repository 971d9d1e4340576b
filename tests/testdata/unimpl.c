/* unimpl: calls a Windows API the emulated guest does not provide; the
 * stub must stop and name KERNEL32.dll!GetSystemPowerStatus and the
 * caller. */
#include <stdio.h>
#include <windows.h>

int main(void)
{
	SYSTEM_POWER_STATUS st;
	printf("asking for power status\n");
	if (GetSystemPowerStatus(&st))
		printf("ac line %d\n", st.ACLineStatus);
	return 3;
}
