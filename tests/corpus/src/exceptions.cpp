// exceptions: C++ exceptions through libstdc++/libgcc on SEH: throw and
// catch across functions, destructors run during unwinding, rethrow,
// nested handlers, std::exception_ptr, std::nested_exception,
// catch(...) of a non-class type, function-try blocks, and a thousand
// throws in a loop.
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int live_guards;

struct Guard {
	const char *name;
	explicit Guard(const char *n) : name(n) { live_guards++; }
	~Guard() {
		live_guards--;
		std::cout << "  ~Guard(" << name << ")\n";
	}
};

struct MyError : std::runtime_error {
	int code;
	MyError(const std::string &what, int c) : std::runtime_error(what), code(c) {}
};

[[gnu::noinline]] void level3(int mode) {
	Guard g("level3");
	switch (mode) {
	case 0: throw MyError("custom failure", 42);
	case 1: throw std::out_of_range("index 9 out of range");
	case 2: throw 17;
	case 3: throw std::string("a string");
	default: break;
	}
	std::cout << "  level3 returns normally\n";
}

[[gnu::noinline]] void level2(int mode) {
	Guard g("level2");
	std::vector<int> owned(100, mode);
	level3(mode);
}

[[gnu::noinline]] void level1(int mode) {
	Guard g("level1");
	try {
		level2(mode);
	} catch (const std::logic_error &e) {
		std::cout << "  level1 saw logic_error, rethrowing: " << e.what() << '\n';
		throw;
	}
}

struct Ctor {
	std::unique_ptr<int> member;
	Ctor() try : member(make()) {
		std::cout << "not reached\n";
	} catch (const std::exception &e) {
		std::cout << "  function-try block caught: " << e.what() << '\n';
	}
	static std::unique_ptr<int> make() { throw std::runtime_error("member init failed"); }
};

void wrap() {
	try {
		throw std::runtime_error("inner cause");
	} catch (...) {
		std::throw_with_nested(std::logic_error("outer wrapper"));
	}
}

void print_nested(const std::exception &e, int depth) {
	std::cout << "  " << std::string(depth * 2, ' ') << e.what() << '\n';
	try {
		std::rethrow_if_nested(e);
	} catch (const std::exception &inner) {
		print_nested(inner, depth + 1);
	}
}

} // namespace

int main() {
	for (int mode = 0; mode <= 4; mode++) {
		std::cout << "mode " << mode << ":\n";
		try {
			level1(mode);
		} catch (const MyError &e) {
			std::cout << "  MyError " << e.what() << " code " << e.code << '\n';
		} catch (const std::exception &e) {
			std::cout << "  std::exception " << e.what() << '\n';
		} catch (int v) {
			std::cout << "  int " << v << '\n';
		} catch (...) {
			std::cout << "  something else\n";
		}
		std::cout << "  live guards " << live_guards << '\n';
	}

	std::exception_ptr saved;
	try {
		throw MyError("kept for later", 7);
	} catch (...) {
		saved = std::current_exception();
	}
	std::cout << "exception_ptr held: " << (saved ? "yes" : "no") << '\n';
	try {
		std::rethrow_exception(saved);
	} catch (const MyError &e) {
		std::cout << "rethrown from exception_ptr: " << e.what() << ' ' << e.code << '\n';
	}
	auto made = std::make_exception_ptr(std::invalid_argument("made"));
	try {
		std::rethrow_exception(made);
	} catch (const std::invalid_argument &e) {
		std::cout << "make_exception_ptr: " << e.what() << '\n';
	}

	std::cout << "function-try block:\n";
	try {
		Ctor c;
	} catch (const std::exception &e) {
		std::cout << "  rethrown to main: " << e.what() << '\n';
	}

	std::cout << "nested:\n";
	try {
		wrap();
	} catch (const std::exception &e) {
		print_nested(e, 0);
	}

	int caught = 0;
	for (int i = 0; i < 1000; i++) {
		try {
			if (i % 3 == 0)
				throw i;
		} catch (int v) {
			caught += v;
		}
	}
	std::cout << "many throws, sum " << caught << '\n';
	try {
		std::vector<int> v(3);
		v.at(5) = 1;
	} catch (const std::out_of_range &) {
		std::cout << "vector::at threw out_of_range\n";
	}
	std::cout << "uncaught_exceptions " << std::uncaught_exceptions() << '\n';
	return 0;
}
