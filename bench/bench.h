/* Helpers shared by the udlm benchmark programs: a monotonic clock,
 * percentiles of latency samples, and failure reporting. Only libc. */
#ifndef UDLM_BENCH_H
#define UDLM_BENCH_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__attribute__((unused)) static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((unused, noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	va_start(ap, fmt);
	fprintf(stderr, "bench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %d: %s)\n", e, strerror(e));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Latency summary of n samples in nanoseconds (sorts them). */
struct stats {
	double p50, p99, mean, min; /* microseconds */
	size_t n;
};

__attribute__((unused)) static struct stats summarize(uint64_t *ns, size_t n)
{
	struct stats s = { 0, 0, 0, 0, n };
	if (!n)
		return s;
	qsort(ns, n, sizeof *ns, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)ns[i];
	s.p50 = ns[n / 2] / 1000.0;
	s.p99 = ns[(size_t)((double)n * 0.99) < n ? (size_t)((double)n * 0.99) : n - 1] / 1000.0;
	s.mean = sum / n / 1000.0;
	s.min = ns[0] / 1000.0;
	return s;
}

/* One result line, "result NAME key=value ...", read by bench/run.sh. */
__attribute__((unused)) static void print_stats(const char *name, struct stats s)
{
	printf("result %s p50=%.2f p99=%.2f mean=%.2f min=%.2f n=%zu\n", name, s.p50, s.p99, s.mean, s.min, s.n);
	fflush(stdout);
}

#endif
