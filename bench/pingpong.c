/* The floor under udlm's latencies: a ping-pong round trip between two
 * processes, over the kind of socket udlm uses for that hop.
 *
 * usage: pingpong unix ITERS WARMUP
 *            AF_UNIX SOCK_SEQPACKET (udlm's local protocol): a 64-byte
 *            request, a 16-byte reply (the sizes of a lock request and its
 *            reply), blocking send/recv on both sides.
 *        pingpong tcp ITERS WARMUP SERVER_ADDR CLIENT_ADDR
 *            TCP over loopback with TCP_NODELAY (like udlm's node-to-node
 *            links): the server listens on SERVER_ADDR, the client binds
 *            CLIENT_ADDR (127.0.0.2 and 127.0.0.1, like nodes 2 and 1);
 *            64 bytes each way.
 *
 * Prints "result rtt_unix|rtt_tcp p50=.. p99=.. mean=.. min=.. n=.." in µs,
 * measured by the client (the parent for unix, the child for tcp).
 * PIN_CLIENT=N / PIN_SERVER=N pin the two sides to CPUs (to measure a
 * wake-up across CPUs against one on the same CPU). SPIN_US=N (unix only):
 * each side looks for its packet without blocking for up to N µs before it
 * sleeps in recv, yielding the CPU between looks, as udlm's library and
 * daemon do (DLM_SPIN_US, src/sys.rs recv_spin), so that
 * udlm's figures can be set beside a floor that does the same.
 */
#define _GNU_SOURCE
#include "bench.h"
#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void pin(const char *var)
{
	const char *v = getenv(var);
	if (!v || !*v)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(atoi(v), &set);
	if (sched_setaffinity(0, sizeof set, &set))
		die("sched_setaffinity(%s=%s)", var, v);
}

static void full_write(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t r = write(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("write");
		b += r;
		n -= (size_t)r;
	}
}

static int full_read(int fd, char *b, size_t n)
{
	while (n) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static long spin_us;

/* recv as udlm does it with DLM_SPIN_US: poll without blocking first. */
static ssize_t recv_spin(int fd, char *b, size_t n)
{
	if (spin_us > 0) {
		uint64_t until = now_ns() + (uint64_t)spin_us * 1000;
		do {
			ssize_t r = recv(fd, b, n, MSG_DONTWAIT);
			if (r >= 0 || (errno != EAGAIN && errno != EINTR))
				return r;
			sched_yield();
		} while (now_ns() < until);
	}
	return recv(fd, b, n, 0);
}

static void run_client(const char *label, int fd, int stream, long iters, long warmup)
{
	char req[64], rep[64];
	size_t reqlen = 64, replen = stream ? 64 : 16;
	memset(req, 'q', sizeof req);
	uint64_t *ns = malloc(sizeof(uint64_t) * (size_t)iters);
	if (!ns)
		die("malloc");
	for (long i = 0; i < warmup + iters; i++) {
		uint64_t t0 = now_ns();
		if (stream) {
			full_write(fd, req, reqlen);
			if (full_read(fd, rep, replen))
				die("read");
		} else {
			if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen)
				die("send");
			if (recv_spin(fd, rep, sizeof rep) != (ssize_t)replen)
				die("recv");
		}
		uint64_t t1 = now_ns();
		if (i >= warmup)
			ns[i - warmup] = t1 - t0;
	}
	print_stats(label, summarize(ns, (size_t)iters));
	free(ns);
}

static void run_server(int fd, int stream)
{
	char b[512];
	char rep[64];
	memset(rep, 'r', sizeof rep);
	for (;;) {
		if (stream) {
			if (full_read(fd, b, 64))
				return;
			full_write(fd, rep, 64);
		} else {
			ssize_t n = recv_spin(fd, b, sizeof b);
			if (n <= 0)
				return;
			if (send(fd, rep, 16, MSG_NOSIGNAL) != 16)
				return;
		}
	}
}

static int unix_mode(long iters, long warmup)
{
	int sv[2];
	const char *spin = getenv("SPIN_US");
	spin_us = spin ? atol(spin) : 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		die("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin("PIN_SERVER");
		close(sv[0]);
		run_server(sv[1], 0);
		_exit(0);
	}
	close(sv[1]);
	pin("PIN_CLIENT");
	run_client(spin_us > 0 ? "rtt_unix_spin" : "rtt_unix", sv[0], 0, iters, warmup);
	close(sv[0]);
	waitpid(pid, NULL, 0);
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one))
		die("TCP_NODELAY");
}

static int tcp_mode(long iters, long warmup, const char *srv, const char *cli)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	if (inet_pton(AF_INET, srv, &sa.sin_addr) != 1)
		die("bad address %s", srv);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0)
		die("socket");
	if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1))
		die("bind/listen %s", srv);
	socklen_t len = sizeof sa;
	getsockname(l, (struct sockaddr *)&sa, &len);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin("PIN_CLIENT");
		close(l);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in ca = { .sin_family = AF_INET };
		if (inet_pton(AF_INET, cli, &ca.sin_addr) != 1)
			die("bad address %s", cli);
		if (bind(c, (struct sockaddr *)&ca, sizeof ca))
			die("bind %s", cli);
		if (connect(c, (struct sockaddr *)&sa, sizeof sa))
			die("connect");
		nodelay(c);
		run_client("rtt_tcp", c, 1, iters, warmup);
		close(c);
		_exit(0);
	}
	pin("PIN_SERVER");
	int s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	nodelay(s);
	run_server(s, 1);
	close(s);
	close(l);
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "unix"))
		return unix_mode(atol(argv[2]), atol(argv[3]));
	if (argc >= 6 && !strcmp(argv[1], "tcp"))
		return tcp_mode(atol(argv[2]), atol(argv[3]), argv[4], argv[5]);
	fprintf(stderr, "usage: pingpong unix ITERS WARMUP | pingpong tcp ITERS WARMUP SERVER_ADDR CLIENT_ADDR\n");
	return 2;
}
