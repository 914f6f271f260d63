/* Recovery time after a node dies (run by bench/recovery.sh). Three nodes;
 * one program per node, plus a killer and a log watcher. Plain libdlm calls:
 * nothing here is specific to udlm except the node logs the watcher reads.
 *
 * usage: recoverybench hold NODE PER ROLE
 *            NODE (1..3) holds PER locks in lockspace "rbench":
 *              own names "o<NODE>-<i>", i < OWN = PER - 2 * (PER / 4),
 *              taken first, so NODE masters them (the asker of a new name
 *              becomes its master): EX when i % 50 == 0, else NL when i is
 *              even, PR when i is odd;
 *              then, once every node has its own names, PR on the odd
 *              names "o<J>-<i>" (i = 1, 3, ...; PER / 4 of them) of each
 *              other node J: locks mastered elsewhere.
 *            ROLE whold (node 3): first EX on "W" (mastered there);
 *            ROLE wwait (node 1): once every node holds its locks, a
 *              NOQUEUE EX on W (must fail with EAGAIN: node 3 holds it, and
 *              node 1 now knows W's master), then EX on W queued at node 3;
 *              stamps the grant (CLOCK_MONOTONIC, in the AST) into the
 *              file "granted";
 *            ROLE none: nothing more.
 *            Then holds everything until the file "stop" exists.
 *        recoverybench kill PID
 *            writes CLOCK_MONOTONIC to the file "killed" just before
 *            SIGKILL to PID, then waits (at most 5 s) until PID is gone.
 *        recoverybench watch OUT SECONDS LOG...
 *            follows each LOG from its current end, every millisecond, and
 *            appends each new line to OUT as "<ns> <index of LOG> <line>",
 *            until the file "stop" exists or SECONDS have passed. With
 *            WATCH_PIDS="PID1 PID2 ..." (the udlmd writing each LOG, 0 for
 *            none), each time new lines arrive it also appends to OUT.cpu
 *            "<ns> <index> <thread name> <CPU ns>" for every live thread of
 *            those processes (/proc/PID/task/TID/schedstat), so that the
 *            CPU a node used between two of its log lines can be told.
 *
 * Files live in $SYNC_DIR: marks "own-N", "held-N", "whold", "wqueued",
 * "pid-N" (the holder's pid), "killed", "granted" (ns), "stop". Every wait is
 * bounded; a failure prints "bench: ..." and exits 1. Result lines start
 * "result". */
#include "bench.h"
#include <dirent.h>
#include <fcntl.h>
#include <libdlm.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#define NODES 3
#define LS "rbench"
#define WINDOW 256 /* requests outstanding while taking the locks */

static char *spath(char *buf, size_t len, const char *name)
{
	const char *d = getenv("SYNC_DIR");
	if (!d || !*d)
		die("SYNC_DIR is not set");
	snprintf(buf, len, "%s/%s", d, name);
	return buf;
}

static int exists(const char *name)
{
	char p[512];
	return access(spath(p, sizeof p, name), F_OK) == 0;
}

/* Writes the file NAME (atomically, by rename) holding TEXT. */
static void put(const char *name, const char *fmt, ...)
{
	char p[512], t[600];
	spath(p, sizeof p, name);
	snprintf(t, sizeof t, "%s.tmp", p);
	FILE *f = fopen(t, "w");
	if (!f)
		die("cannot create %s", t);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f) || rename(t, p))
		die("cannot write %s", p);
}

static void await_file(const char *name, int seconds)
{
	uint64_t end = now_ns() + (uint64_t)seconds * 1000000000u;
	while (!exists(name)) {
		if (now_ns() > end) {
			errno = ETIMEDOUT;
			die("no file %s after %d s", name, seconds);
		}
		usleep(5000);
	}
}

/* ----- taking many locks, WINDOW requests outstanding ---------------------- */

struct req {
	struct dlm_lksb lksb;
	int done;
};

static dlm_lshandle_t ls;
static int lsfd;
static long completed, failed;

static void req_ast(void *arg)
{
	struct req *r = arg;
	r->done = 1;
	completed++;
	if (r->lksb.sb_status != 0)
		failed++;
}

static void dispatch_some(int timeout_ms)
{
	struct pollfd p = { .fd = lsfd, .events = POLLIN };
	int n = poll(&p, 1, timeout_ms);
	if (n < 0 && errno != EINTR)
		die("poll");
	if (n > 0 && dlm_dispatch(lsfd) < 0 && errno != EAGAIN)
		die("dlm_dispatch");
}

/* Requests COUNT locks; name and mode of the k-th come from GEN. Returns
 * once all are granted (at most LIMIT_S seconds). */
static void take(long count, void (*gen)(long k, char *name, size_t len, uint32_t *mode, void *ctx), void *ctx,
		 struct req *reqs, int limit_s)
{
	long issued = 0;
	long base = completed;
	uint64_t end = now_ns() + (uint64_t)limit_s * 1000000000u;
	while (completed - base < count) {
		while (issued < count && issued - (completed - base) < WINDOW) {
			char name[64];
			uint32_t mode;
			gen(issued, name, sizeof name, &mode, ctx);
			struct req *r = &reqs[issued];
			if (dlm_ls_lock(ls, mode, &r->lksb, 0, name, (unsigned)strlen(name), 0, req_ast, r, NULL, NULL))
				die("dlm_ls_lock(%s)", name);
			issued++;
		}
		if (now_ns() > end) {
			errno = ETIMEDOUT;
			die("%ld of %ld locks granted after %d s", completed - base, count, limit_s);
		}
		dispatch_some(1000);
	}
	if (failed)
		die("%ld lock requests failed", failed);
}

struct own_ctx {
	int node;
};
static void gen_own(long k, char *name, size_t len, uint32_t *mode, void *ctx)
{
	struct own_ctx *c = ctx;
	snprintf(name, len, "o%d-%ld", c->node, k);
	*mode = k % 50 == 0 ? LKM_EXMODE : k % 2 == 0 ? LKM_NLMODE : LKM_PRMODE;
}

struct shared_ctx {
	int other[NODES - 1];
	long each;
};
static void gen_shared(long k, char *name, size_t len, uint32_t *mode, void *ctx)
{
	struct shared_ctx *c = ctx;
	int j = c->other[k / c->each];
	long i = 2 * (k % c->each) + 1; /* odd: PR by the owner, never EX */
	snprintf(name, len, "o%d-%ld", j, i);
	*mode = LKM_PRMODE;
}

/* ----- W ------------------------------------------------------------------ */

static struct dlm_lksb w_lksb;
static volatile int w_done;
static uint64_t w_granted_ns;

static void w_ast(void *arg)
{
	(void)arg;
	w_granted_ns = now_ns();
	w_done = 1;
}

/* One EX request on W; returns its status (bounded by LIMIT_S). */
static int lock_w(uint32_t flags, int limit_s, int queued_mark)
{
	w_done = 0;
	if (dlm_ls_lock(ls, LKM_EXMODE, &w_lksb, flags, "W", 1, 0, w_ast, NULL, NULL, NULL))
		die("dlm_ls_lock(W)");
	if (queued_mark)
		put("wqueued", "%llu\n", (unsigned long long)now_ns());
	uint64_t end = now_ns() + (uint64_t)limit_s * 1000000000u;
	while (!w_done) {
		if (now_ns() > end) {
			errno = ETIMEDOUT;
			die("no completion of the EX request on W after %d s", limit_s);
		}
		dispatch_some(100);
	}
	return w_lksb.sb_status;
}

static int hold(int node, long per, const char *role)
{
	char m[64];
	snprintf(m, sizeof m, "pid-%d", node);
	put(m, "%d\n", (int)getpid());
	ls = dlm_create_lockspace(LS, 0600);
	if (!ls)
		die("dlm_create_lockspace(%s)", LS);
	lsfd = dlm_ls_get_fd(ls);
	long each = per / 4, own = per - 2 * each;
	struct req *reqs = calloc((size_t)per, sizeof *reqs);
	if (!reqs)
		die("calloc");
	uint64_t t0 = now_ns();
	if (!strcmp(role, "whold")) {
		if (lock_w(0, 60, 0) != 0)
			die("EX on W: status %d", w_lksb.sb_status);
		put("whold", "\n");
	}
	struct own_ctx oc = { node };
	take(own, gen_own, &oc, reqs, 300);
	snprintf(m, sizeof m, "own-%d", node);
	put(m, "\n");
	for (int j = 1; j <= NODES; j++) {
		snprintf(m, sizeof m, "own-%d", j);
		await_file(m, 300);
	}
	uint64_t t1 = now_ns();
	struct shared_ctx sc = { { 0 }, each };
	for (int j = 1, n = 0; j <= NODES; j++)
		if (j != node)
			sc.other[n++] = j;
	take(2 * each, gen_shared, &sc, reqs + own, 300);
	uint64_t t2 = now_ns();
	snprintf(m, sizeof m, "held-%d", node);
	put(m, "\n");
	printf("result hold node=%d locks=%ld own=%ld shared=%ld own_s=%.3f shared_s=%.3f\n", node, per, own, 2 * each,
	       (t1 - t0) / 1e9, (t2 - t1) / 1e9);
	fflush(stdout);

	if (!strcmp(role, "wwait")) {
		for (int j = 1; j <= NODES; j++) {
			snprintf(m, sizeof m, "held-%d", j);
			await_file(m, 300);
		}
		await_file("whold", 10);
		int st = lock_w(LKF_NOQUEUE, 30, 0);
		if (st != EAGAIN)
			die("NOQUEUE EX on W: status %d, expected EAGAIN (%d)", st, EAGAIN);
		/* Queued at node 3 (the master, known now); granted after the
		 * recovery. Bounded by the script's wait, plus a margin. */
		st = lock_w(0, 120, 1);
		if (st != 0)
			die("EX on W: status %d", st);
		put("granted", "%llu\n", (unsigned long long)w_granted_ns);
		printf("result wgrant ns=%llu\n", (unsigned long long)w_granted_ns);
		fflush(stdout);
	}
	await_file("stop", 900);
	/* The node drops the locks when the handle goes. */
	_exit(0);
}

/* ----- killer ------------------------------------------------------------- */

static int killer(pid_t pid)
{
	if (pid <= 1)
		die("bad pid %d", (int)pid);
	uint64_t t = now_ns();
	put("killed", "%llu\n", (unsigned long long)t);
	if (kill(pid, SIGKILL))
		die("kill(%d)", (int)pid);
	/* Gone: no /proc entry, or a zombie waiting for its parent. */
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 5000; i++) {
		FILE *f = fopen(p, "r");
		if (!f)
			goto gone;
		char state = 0;
		int ok = fscanf(f, "%*d (%*[^)]) %c", &state);
		fclose(f);
		if (ok == 1 && state == 'Z')
			goto gone;
		usleep(1000);
	}
	errno = ETIMEDOUT;
	die("pid %d still alive 5 s after SIGKILL", (int)pid);
gone:
	printf("result kill ns=%llu gone_after_us=%.0f\n", (unsigned long long)t, (now_ns() - t) / 1e3);
	return 0;
}

/* ----- log watcher -------------------------------------------------------- */

#define MAXLOGS 8

/* Every thread of PID: "<ns> <index> <name> <CPU ns>" lines to F. */
static void cpu_snapshot(FILE *f, uint64_t t, int index, int pid)
{
	char p[128];
	snprintf(p, sizeof p, "/proc/%d/task", pid);
	DIR *d = opendir(p);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char q[300], comm[64] = "?";
		unsigned long long run = 0;
		snprintf(q, sizeof q, "/proc/%d/task/%s/comm", pid, e->d_name);
		FILE *c = fopen(q, "r");
		if (c) {
			if (fgets(comm, sizeof comm, c))
				comm[strcspn(comm, "\n ")] = 0;
			fclose(c);
		}
		snprintf(q, sizeof q, "/proc/%d/task/%s/schedstat", pid, e->d_name);
		FILE *s = fopen(q, "r");
		if (!s)
			continue;
		int ok = fscanf(s, "%llu", &run);
		fclose(s);
		if (ok == 1)
			fprintf(f, "%llu %d %s %llu\n", (unsigned long long)t, index, comm, run);
	}
	closedir(d);
}

static int watch(const char *out, int seconds, int nlogs, char **logs)
{
	if (nlogs > MAXLOGS)
		die("at most %d logs", MAXLOGS);
	FILE *o = fopen(out, "a");
	if (!o)
		die("cannot open %s", out);
	char cpath[512];
	snprintf(cpath, sizeof cpath, "%s.cpu", out);
	FILE *co = fopen(cpath, "a");
	if (!co)
		die("cannot open %s", cpath);
	int pids[MAXLOGS] = { 0 };
	const char *wp = getenv("WATCH_PIDS");
	for (int i = 0; wp && i < nlogs; i++) {
		char *endp;
		pids[i] = (int)strtol(wp, &endp, 10);
		if (endp == wp)
			break;
		wp = endp;
	}
	int fds[MAXLOGS];
	static char part[MAXLOGS][4096];
	size_t plen[MAXLOGS] = { 0 };
	for (int i = 0; i < nlogs; i++) {
		fds[i] = open(logs[i], O_RDONLY);
		if (fds[i] < 0)
			die("cannot open %s", logs[i]);
		lseek(fds[i], 0, SEEK_END);
	}
	put("watching", "\n");
	uint64_t end = now_ns() + (uint64_t)seconds * 1000000000u;
	for (;;) {
		int stop = exists("stop") || now_ns() > end;
		int fresh = 0;
		for (int i = 0; i < nlogs; i++) {
			char buf[65536];
			ssize_t n;
			while ((n = read(fds[i], buf, sizeof buf)) > 0) {
				uint64_t t = now_ns();
				fresh = 1;
				for (ssize_t k = 0; k < n; k++) {
					if (buf[k] == '\n' || plen[i] == sizeof part[i] - 1) {
						fprintf(o, "%llu %d %.*s\n", (unsigned long long)t, i + 1, (int)plen[i], part[i]);
						plen[i] = 0;
					} else {
						part[i][plen[i]++] = buf[k];
					}
				}
			}
		}
		fflush(o);
		if (fresh) {
			uint64_t t = now_ns();
			for (int i = 0; i < nlogs; i++)
				if (pids[i] > 0)
					cpu_snapshot(co, t, i + 1, pids[i]);
			fflush(co);
		}
		if (stop)
			break;
		usleep(1000);
	}
	fclose(o);
	fclose(co);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "hold"))
		return hold(atoi(argv[2]), atol(argv[3]), argv[4]);
	if (argc == 3 && !strcmp(argv[1], "kill"))
		return killer((pid_t)atoi(argv[2]));
	if (argc >= 5 && !strcmp(argv[1], "watch"))
		return watch(argv[2], atoi(argv[3]), argc - 4, argv + 4);
	fprintf(stderr, "usage: recoverybench hold NODE PER whold|wwait|none | kill PID | watch OUT SECONDS LOG...\n");
	return 2;
}
