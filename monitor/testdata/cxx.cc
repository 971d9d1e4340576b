// cxx: C++ names for the demangling tests, built by both C++ ABIs:
//   x86_64-w64-mingw32-g++ -O1 -g -o cxx.exe cxx.cc              (Itanium)
//   clang++ --target=x86_64-pc-windows-msvc -fuse-ld=lld -O1 -gdwarf
//     -fno-exceptions -fno-rtti -nostdlib -Wl,-entry:start
//     -Wl,-subsystem:console -Wl,-debug:dwarf cxx.cc libkernel32.a   (Microsoft)
// main (or start) calls twice<double> from ns::Widget::poke.
extern "C" __declspec(dllimport) void __stdcall ExitProcess(unsigned);
extern "C" int _fltused = 0;

template <typename T> __attribute__((noinline)) T twice(T x) { return x + x; }

namespace ns {
struct Widget {
	int v;
	__attribute__((noinline)) int poke(int x) const;
};
int Widget::poke(int x) const { return v + x + (int)twice((double)x); }
} // namespace ns

static int run() {
	ns::Widget w{3};
	return w.poke(4) + (int)twice<long long>(5);
}

#ifdef _MSC_VER
extern "C" void start() { ExitProcess(run()); }
#else
int main() { return run(); }
#endif
