/* The three workloads of bench/compare, shared by every lock client
 * (udlm.c, redis.c, etcd.c, zk.c): each client only says how to connect,
 * acquire an exclusive lock on a name and release it; this file times the
 * same loops for all of them, so that the systems differ and the loops do
 * not. Only libc.
 *
 * usage: CLIENT TARGET latency ITERS WARMUP MAX_SECONDS
 *            one client, sequential acquire+release of one name; prints
 *            "result latency p50=.. p99=.. mean=.. min=.. n=.." (µs). It
 *            stops early after MAX_SECONDS so that a slow system still
 *            finishes (n says how many pairs were timed).
 *        CLIENT TARGET own CLIENTS SECONDS
 *            CLIENTS processes, each with its own connection, each cycling
 *            over OWN_NAMES names of its own; pairs per second over
 *            SECONDS after half a second of warm-up.
 *        CLIENT TARGET one CLIENTS SECONDS
 *            CLIENTS processes on one name, each looping acquire, release;
 *            acquisitions per second, how often the holder changed, and a
 *            mutual-exclusion check (two holders at once is a violation).
 * TARGET is whatever the client needs to reach its server ("host:port").
 */
#ifndef COMPARE_DRIVER_H
#define COMPARE_DRIVER_H

#define _GNU_SOURCE
#include "../bench.h"
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define OWN_NAMES 4

struct backend {
	const char *name;
	/* Connect (one connection or handle per client process). */
	void *(*open)(const char *target, int client);
	/* Optional: make NAME lockable before the clock starts (ZooKeeper's
	 * recipe needs a parent node per lock name). */
	void (*prepare)(void *h, const char *name);
	/* Block until the caller holds NAME exclusively. */
	void (*lock)(void *h, const char *name);
	/* Release what the last lock() acquired. */
	void (*unlock)(void *h);
	void (*close)(void *h);
};

/* Written by the clients of one run; lives in a shared mapping. */
struct board {
	volatile int ready;
	volatile int inside;    /* holders of the contended name right now */
	volatile int last;      /* who held it last */
	uint64_t start;         /* when every client starts its loop */
	long count[64];         /* pairs / acquisitions inside the window */
	long changes;           /* acquisitions by another client than the last */
	long violations;        /* acquisitions that found another holder inside */
};

/* A TCP connection to "host:port" with TCP_NODELAY (requests are small and
 * each waits for its answer), for the clients that speak their protocol
 * themselves. */
__attribute__((unused)) static int tcp_connect(const char *target)
{
	char host[256];
	snprintf(host, sizeof host, "%s", target);
	char *colon = strrchr(host, ':');
	if (!colon)
		die("target %s: want host:port", target);
	*colon = 0;
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		die("getaddrinfo %s", target);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen))
		die("connect %s", target);
	freeaddrinfo(ai);
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one))
		die("TCP_NODELAY");
	return fd;
}

static int latency_run(const struct backend *b, const char *target, long iters, long warmup, double max_secs)
{
	void *h = b->open(target, 0);
	const char *name = "compare-latency";
	if (b->prepare)
		b->prepare(h, name);
	for (long i = 0; i < warmup; i++) {
		b->lock(h, name);
		b->unlock(h);
	}
	uint64_t *ns = malloc(sizeof(uint64_t) * (size_t)iters);
	if (!ns)
		die("malloc");
	uint64_t stop = now_ns() + (uint64_t)(max_secs * 1e9);
	long n = 0;
	while (n < iters) {
		uint64_t t0 = now_ns();
		b->lock(h, name);
		b->unlock(h);
		uint64_t t1 = now_ns();
		ns[n++] = t1 - t0;
		if (t1 >= stop)
			break;
	}
	print_stats("latency", summarize(ns, (size_t)n));
	b->close(h);
	return 0;
}

static void client_loop(const struct backend *b, const char *target, struct board *bd, int me, int contended,
			double secs)
{
	void *h = b->open(target, me);
	char names[OWN_NAMES][48];
	int nnames = contended ? 1 : OWN_NAMES;
	for (int k = 0; k < nnames; k++) {
		if (contended)
			snprintf(names[k], sizeof names[k], "compare-one");
		else
			snprintf(names[k], sizeof names[k], "compare-own-%d-%d", me, k);
		if (b->prepare)
			b->prepare(h, names[k]);
	}
	__sync_fetch_and_add(&bd->ready, 1);
	/* The parent sets the start once every client is ready (or gives up
	 * waiting for one that failed, so that the others do not hang). */
	while (bd->start == 0 || now_ns() < bd->start)
		usleep(100);
	uint64_t from = bd->start + 500000000u; /* warm-up: half a second */
	uint64_t to = from + (uint64_t)(secs * 1e9);
	long n = 0;
	for (long i = 0;; i++) {
		const char *name = names[i % nnames];
		b->lock(h, name);
		uint64_t t = now_ns();
		if (contended) {
			/* Under the lock: the shared record is ours alone, unless
			 * the lock failed to exclude. */
			if (__sync_add_and_fetch(&bd->inside, 1) != 1)
				__sync_fetch_and_add(&bd->violations, 1);
			if (t >= from && t < to) {
				n++;
				if (bd->last != me)
					__sync_fetch_and_add(&bd->changes, 1);
			}
			bd->last = me;
			__sync_fetch_and_sub(&bd->inside, 1);
		}
		b->unlock(h);
		if (!contended) {
			t = now_ns();
			if (t >= from && t < to)
				n++;
		}
		if (t >= to)
			break;
	}
	bd->count[me] = n;
	b->close(h);
}

static int multi_run(const struct backend *b, const char *target, int nclients, double secs, int contended)
{
	if (nclients < 1 || nclients > 64)
		die("CLIENTS must be 1..64");
	struct board *bd = mmap(NULL, sizeof *bd, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (bd == MAP_FAILED)
		die("mmap");
	memset(bd, 0, sizeof *bd);
	bd->last = -1;
	pid_t pid[64];
	for (int k = 0; k < nclients; k++) {
		pid[k] = fork();
		if (pid[k] < 0)
			die("fork");
		if (pid[k] == 0) {
			client_loop(b, target, bd, k, contended, secs);
			_exit(0);
		}
	}
	/* Start together once every client is connected and prepared; a
	 * client that died before that fails the run at once. */
	uint64_t give_up = now_ns() + 60000000000u;
	int rc = 0, st;
	while (bd->ready < nclients && now_ns() < give_up && !rc) {
		usleep(1000);
		for (int k = 0; k < nclients; k++)
			if (pid[k] > 0 && waitpid(pid[k], &st, WNOHANG) == pid[k]) {
				pid[k] = 0;
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					rc = 1;
			}
	}
	if (bd->ready < nclients)
		fprintf(stderr, "%s: only %d of %d clients got ready\n", b->name, bd->ready, nclients);
	bd->start = now_ns() + 100000000u;
	for (int k = 0; k < nclients; k++) {
		if (pid[k] <= 0)
			continue;
		waitpid(pid[k], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			rc = 1;
	}
	if (rc)
		return rc;
	long total = 0, lo = -1, hi = 0;
	for (int k = 0; k < nclients; k++) {
		total += bd->count[k];
		if (lo < 0 || bd->count[k] < lo)
			lo = bd->count[k];
		if (bd->count[k] > hi)
			hi = bd->count[k];
	}
	if (contended)
		printf("result one clients=%d seconds=%.3f grants=%ld grants_per_s=%.0f changes=%ld changes_per_s=%.0f "
		       "min_client=%ld max_client=%ld violations=%ld\n",
		       nclients, secs, total, total / secs, bd->changes, bd->changes / secs, lo, hi, bd->violations);
	else
		printf("result own clients=%d seconds=%.3f pairs=%ld pairs_per_s=%.0f min_client=%ld max_client=%ld\n",
		       nclients, secs, total, total / secs, lo, hi);
	fflush(stdout);
	return bd->violations ? 3 : 0;
}

static int driver_main(const struct backend *b, int argc, char **argv)
{
	const char *m = argc > 2 ? argv[2] : "";
	if (!strcmp(m, "latency") && argc >= 6)
		return latency_run(b, argv[1], atol(argv[3]), atol(argv[4]), atof(argv[5]));
	if (!strcmp(m, "own") && argc >= 5)
		return multi_run(b, argv[1], atoi(argv[3]), atof(argv[4]), 0);
	if (!strcmp(m, "one") && argc >= 5)
		return multi_run(b, argv[1], atoi(argv[3]), atof(argv[4]), 1);
	fprintf(stderr,
		"usage: %s TARGET latency ITERS WARMUP MAX_SECONDS | TARGET own CLIENTS SECONDS | TARGET one CLIENTS SECONDS\n",
		argv[0]);
	return 2;
}

#endif
