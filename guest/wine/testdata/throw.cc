// A C++ throw through two frames, caught in main: libgcc's unwinder over
// Wine's RtlUnwindEx. x86_64-w64-mingw32-g++ -O1 -static throw.cc
#include <cstdio>
#include <stdexcept>

__attribute__((noinline)) static void deep(int v) {
	if (v > 0)
		throw std::runtime_error("boom");
}

__attribute__((noinline)) static int middle(int v) {
	deep(v);
	return v + 1;
}

int main() {
	try {
		middle(42);
	} catch (const std::exception &) {
		std::printf("caught 42\n");
	}
	return 0;
}
