// threads: std::thread, std::mutex, std::condition_variable and
// std::atomic: a bounded producer/consumer queue, a counter under a
// lock, and join order. Output comes from the main thread after joins,
// so it does not depend on scheduling.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

namespace {

class Queue {
public:
	explicit Queue(size_t cap) : cap_(cap) {}
	void push(int v) {
		std::unique_lock<std::mutex> lock(mu_);
		not_full_.wait(lock, [&] { return q_.size() < cap_; });
		q_.push_back(v);
		max_seen_ = std::max(max_seen_, q_.size());
		not_empty_.notify_one();
	}
	bool pop(int &v) {
		std::unique_lock<std::mutex> lock(mu_);
		not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
		if (q_.empty())
			return false;
		v = q_.front();
		q_.pop_front();
		not_full_.notify_one();
		return true;
	}
	void close() {
		std::lock_guard<std::mutex> lock(mu_);
		closed_ = true;
		not_empty_.notify_all();
	}
	size_t max_seen() const { return max_seen_; }

private:
	std::mutex mu_;
	std::condition_variable not_full_, not_empty_;
	std::deque<int> q_;
	size_t cap_;
	size_t max_seen_ = 0;
	bool closed_ = false;
};

} // namespace

int main() {
	Queue q(4);
	std::vector<long long> consumed(3, 0);
	std::vector<std::thread> consumers;
	for (int c = 0; c < 3; c++)
		consumers.emplace_back([&, c] {
			int v;
			while (q.pop(v))
				consumed[c] += v;
		});
	std::vector<std::thread> producers;
	for (int p = 0; p < 2; p++)
		producers.emplace_back([&, p] {
			for (int i = 1; i <= 500; i++)
				q.push(i * (p + 1));
		});
	for (auto &t : producers)
		t.join();
	q.close();
	for (auto &t : consumers)
		t.join();
	long long total = std::accumulate(consumed.begin(), consumed.end(), 0LL);
	std::cout << "consumed total " << total << " (want " << 500 * 501 / 2 * 3 << ")\n";
	std::cout << "queue never over capacity: " << (q.max_seen() <= 4) << '\n';

	std::mutex mu;
	long long locked = 0;
	std::atomic<int> atomic{0};
	std::vector<std::thread> adders;
	for (int t = 0; t < 4; t++)
		adders.emplace_back([&] {
			for (int i = 0; i < 10000; i++) {
				{
					std::lock_guard<std::mutex> lock(mu);
					locked += 2;
				}
				atomic.fetch_add(1, std::memory_order_relaxed);
			}
		});
	for (auto &t : adders)
		t.join();
	std::cout << "locked " << locked << " atomic " << atomic.load() << '\n';

	std::mutex order_mu;
	std::condition_variable order_cv;
	int turn = 0;
	std::vector<int> order;
	std::vector<std::thread> ordered;
	for (int t = 4; t >= 0; t--)
		ordered.emplace_back([&, t] {
			std::unique_lock<std::mutex> lock(order_mu);
			order_cv.wait(lock, [&] { return turn == t; });
			order.push_back(t);
			turn++;
			order_cv.notify_all();
		});
	for (auto &t : ordered)
		t.join();
	std::cout << "turns taken in order:";
	for (int t : order)
		std::cout << ' ' << t;
	std::cout << '\n';
	std::cout << "hardware_concurrency is positive: " << (std::thread::hardware_concurrency() > 0) << '\n';
	std::thread::id main_id = std::this_thread::get_id();
	bool differs = false;
	std::thread([&] { differs = std::this_thread::get_id() != main_id; }).join();
	std::cout << "a thread's id differs from main's: " << differs << '\n';
	return 0;
}
