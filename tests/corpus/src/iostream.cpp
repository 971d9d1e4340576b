// iostream: libstdc++'s streams and containers: cout formatting,
// string streams, std::map/std::set/std::vector, algorithms, and a
// static object whose constructor and destructor print.
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Announcer {
	std::string name;
	explicit Announcer(std::string n) : name(std::move(n)) { std::cout << "construct " << name << '\n'; }
	~Announcer() { std::cout << "destruct " << name << std::endl; }
};

Announcer global_announcer("global");

struct Shape {
	virtual ~Shape() = default;
	virtual double area() const = 0;
	virtual std::string name() const = 0;
};

struct Rect : Shape {
	double w, h;
	Rect(double w_, double h_) : w(w_), h(h_) {}
	double area() const override { return w * h; }
	std::string name() const override { return "rect"; }
};

struct Circle : Shape {
	double r;
	explicit Circle(double r_) : r(r_) {}
	double area() const override { return 3.141592653589793 * r * r; }
	std::string name() const override { return "circle"; }
};

} // namespace

int main() {
	std::cout << "ints: " << 42 << ' ' << -7 << ' ' << std::hex << 255 << ' ' << std::oct << 8 << std::dec << '\n';
	std::cout << std::setw(8) << std::setfill('*') << 123 << '|' << std::left << std::setw(6) << "ab" << '|'
	          << std::right << std::setfill(' ') << '\n';
	std::cout << std::fixed << std::setprecision(3) << 3.14159265 << ' ' << std::scientific << 12345.678
	          << std::defaultfloat << ' ' << 0.1 + 0.2 << '\n';
	std::cout << std::boolalpha << true << ' ' << false << std::noboolalpha << '\n';

	std::string text = "the quick brown fox jumps over the lazy dog the end";
	std::istringstream in(text);
	std::map<std::string, int> counts;
	std::string word;
	while (in >> word)
		counts[word]++;
	for (const auto &kv : counts)
		std::cout << kv.first << '=' << kv.second << ' ';
	std::cout << '\n';

	std::vector<int> v(20);
	std::iota(v.begin(), v.end(), 1);
	std::reverse(v.begin(), v.end());
	std::stable_sort(v.begin(), v.end(), [](int a, int b) { return a % 5 < b % 5; });
	for (int x : v)
		std::cout << x << ' ';
	std::cout << '\n';
	std::cout << "sum " << std::accumulate(v.begin(), v.end(), 0) << " max "
	          << *std::max_element(v.begin(), v.end()) << " evens "
	          << std::count_if(v.begin(), v.end(), [](int x) { return x % 2 == 0; }) << '\n';

	std::set<std::string> uniq(counts.size() > 0 ? std::set<std::string>{"b", "a", "c", "a"} : std::set<std::string>{});
	std::ostringstream joined;
	for (const auto &s : uniq)
		joined << s << (s == *uniq.rbegin() ? "" : ",");
	std::cout << "set: " << joined.str() << '\n';

	std::vector<std::unique_ptr<Shape>> shapes;
	shapes.push_back(std::make_unique<Rect>(2, 3.5));
	shapes.push_back(std::make_unique<Circle>(1.5));
	shapes.push_back(std::make_unique<Rect>(0.5, 0.5));
	std::sort(shapes.begin(), shapes.end(), [](const auto &a, const auto &b) { return a->area() < b->area(); });
	for (const auto &s : shapes)
		std::cout << s->name() << ' ' << std::setprecision(4) << s->area() << '\n';

	std::string s = "Hello, World";
	std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return (char)std::toupper(c); });
	std::cout << s << " find " << s.find("WORLD") << " substr " << s.substr(7, 3) << '\n';
	{
		Announcer local("local");
	}
	std::cout << "main returns" << std::endl;
	return 0;
}
