// names: C++ declarations whose Microsoft names the demangler's oracle
// test compares with llvm-undname. Compiled to an object file only:
//   clang++ --target=x86_64-pc-windows-msvc -c -o names.obj names.cc
namespace ns {
enum Color { Red, Green };
struct Widget {
	int v;
	Widget();
	~Widget();
	Widget &operator=(const Widget &);
	Widget &operator+=(int);
	bool operator==(const Widget &) const;
	int operator()(int, char) const;
	int poke(int x) const;
	static Widget *make(const char *name, unsigned long long id);
	virtual void paint(Color c, float alpha);
	void take(Widget &&w);
	void callback(int (*fn)(int, double), void *ctx);
	void many(signed char, unsigned char, short, unsigned short, long, unsigned long, long double, bool, wchar_t, char16_t, char32_t);
};
template <typename T, int N> struct Box { T items[N]; T first() const; };
namespace inner { int counter; const char *label; }
}
template <typename T> T twice(T x) { return x + x; }
template <typename A, typename B> struct Pair { A a; B b; };
void sink(ns::Box<int, 4> *box, const ns::Box<double, 2> &other);
void sink2(Pair<ns::Widget *, Pair<int, int>> p, decltype(nullptr));
void variadic(const char *fmt, ...);
void repeat(ns::Widget *a, ns::Widget *b, const ns::Widget *c, ns::Widget *d);

void use() {
	ns::Widget w;
	w = w;
	w += 1;
	(void)(w == w);
	w(1, 'c');
	w.poke(2);
	ns::Widget::make("x", 1);
	w.paint(ns::Red, 0.5f);
	w.take(static_cast<ns::Widget &&>(w));
	w.callback(nullptr, nullptr);
	w.many(0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0);
	ns::Box<int, 4> b{};
	b.first();
	twice(1);
	twice(1.5);
	twice<unsigned long long>(2);
	sink(&b, ns::Box<double, 2>{});
	sink2(Pair<ns::Widget *, Pair<int, int>>{}, nullptr);
	variadic("x", 1, 2);
	repeat(&w, &w, &w, &w);
	ns::inner::counter++;
	(void)ns::inner::label;
}
