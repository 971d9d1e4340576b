// C++ exceptions through RaiseException/RtlUnwindEx:
// x86_64-w64-mingw32-g++ -O1 -static -o except.exe except.cc
#include <cstdio>
#include <stdexcept>

struct Guard {
	const char *n;
	~Guard() { printf("~Guard %s\n", n); }
};

__attribute__((noinline)) void thrower(int d) {
	Guard g{"inner"};
	if (d == 0)
		throw std::runtime_error("boom");
	thrower(d - 1);
}

int main() {
	try {
		Guard g{"outer"};
		thrower(2);
	} catch (const std::exception &e) {
		printf("caught %s\n", e.what());
	}
	try {
		try {
			throw 7;
		} catch (int x) {
			printf("inner %d\n", x);
			throw;
		}
	} catch (int y) {
		printf("rethrown %d\n", y);
	}
	return 3;
}
