/* bench/compare's lowest floor: what an uncontended lock+unlock costs when
 * the lock is a pthread mutex in the same process, nothing crossing a
 * process or a machine. The pairs are timed in batches (one clock reading
 * per BATCH pairs), since one pair takes less than a clock reading.
 *
 * usage: mutex PAIRS
 * Prints "result mutex ns_per_pair=.. p50=.. p99=.. n=.." (p50/p99 in µs,
 * per pair, over the batches).
 */
#include "../bench.h"
#include <pthread.h>

#define BATCH 1000

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 10000000;
	long batches = pairs / BATCH;
	if (batches < 1)
		batches = 1;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	uint64_t *ns = malloc(sizeof(uint64_t) * (size_t)batches);
	if (!ns)
		die("malloc");
	/* Warm-up, so that the first batches do not pay for page faults. */
	for (int i = 0; i < 100000; i++) {
		pthread_mutex_lock(&mu);
		pthread_mutex_unlock(&mu);
	}
	uint64_t total = 0;
	for (long b = 0; b < batches; b++) {
		uint64_t t0 = now_ns();
		for (int i = 0; i < BATCH; i++) {
			pthread_mutex_lock(&mu);
			/* Keep the compiler from merging the pairs away. */
			__asm__ volatile("" ::: "memory");
			pthread_mutex_unlock(&mu);
		}
		uint64_t d = now_ns() - t0;
		total += d;
		ns[b] = d / BATCH;
	}
	struct stats s = summarize(ns, (size_t)batches);
	printf("result mutex ns_per_pair=%.1f p50=%.4f p99=%.4f n=%ld\n", (double)total / (double)(batches * BATCH), s.p50,
	       s.p99, batches * BATCH);
	return 0;
}
