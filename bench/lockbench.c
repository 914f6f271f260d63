/* Lock latency and throughput through the libdlm API. Nothing here is
 * udlm-specific: the same program runs on the kernel DLM's libdlm. Which
 * node it talks to (daemon, embedded, which node of a cluster) is decided by
 * the environment (DLM_RUN_DIR, DLM_EMBEDDED, DLM_NODEID, DLM_CONF).
 *
 * usage: lockbench sync-wait ITERS WARMUP
 *            EX lock + unlock of one fixed name with dlm_ls_lock_wait and
 *            dlm_ls_unlock_wait, callbacks handled by the thread of
 *            dlm_ls_pthread_init.
 *        lockbench sync-poll ITERS WARMUP
 *            the same with dlm_ls_lock / dlm_ls_unlock and no thread: the
 *            caller polls the lockspace fd and calls dlm_dispatch.
 *        lockbench async SECONDS DEPTH
 *            DEPTH lock+unlock chains outstanding at once (chain i uses
 *            name i of a set of DEPTH names); completions come from
 *            dlm_dispatch on the fd. Counts pairs per second over SECONDS
 *            after half a second of warm-up.
 *        lockbench handover SECONDS
 *            two processes each loop { EX lock_wait (with a BAST routine);
 *            unlock_wait } on one name; counts grants, how often the lock
 *            changed hands, and BASTs received.
 *        lockbench first COUNT NODES
 *            EX locks on COUNT fresh names (timed; each unlocked after),
 *            classified by the name's directory node among nodes 1..NODES
 *            (same weights: the default config), then a second, timed
 *            pass of lock+unlock on the same names.
 *
 * Lockspace: $BENCH_LS (default "bench"). Result lines start "result".
 */
#include "bench.h"
#include <libdlm.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ls_name(void)
{
	const char *s = getenv("BENCH_LS");
	return s && *s ? s : "bench";
}

static dlm_lshandle_t open_ls(void)
{
	dlm_lshandle_t ls = dlm_create_lockspace(ls_name(), 0600);
	if (!ls)
		die("dlm_create_lockspace(%s)", ls_name());
	return ls;
}

/* ----- completion through poll + dlm_dispatch --------------------------- */

static void flag_ast(void *arg)
{
	*(volatile int *)arg = 1;
}

static void wait_flag(int fd, volatile int *flag)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (!*flag) {
		if (poll(&p, 1, 10000) < 0 && errno != EINTR)
			die("poll");
		if (dlm_dispatch(fd) < 0 && errno != EAGAIN)
			die("dlm_dispatch");
	}
}

static void poll_lock(dlm_lshandle_t ls, int fd, struct dlm_lksb *lksb, const char *name)
{
	volatile int done = 0;
	if (dlm_ls_lock(ls, LKM_EXMODE, lksb, 0, name, (unsigned)strlen(name), 0, flag_ast, (void *)&done, NULL, NULL))
		die("dlm_ls_lock(%s)", name);
	wait_flag(fd, &done);
	if (lksb->sb_status)
		die("lock %s: status %d", name, lksb->sb_status);
}

static void poll_unlock(dlm_lshandle_t ls, int fd, struct dlm_lksb *lksb)
{
	volatile int done = 0;
	if (dlm_ls_unlock(ls, lksb->sb_lkid, 0, lksb, (void *)&done))
		die("dlm_ls_unlock");
	wait_flag(fd, &done);
	if (lksb->sb_status != EUNLOCK)
		die("unlock: status %d", lksb->sb_status);
}

/* ----- sync ------------------------------------------------------------- */

static int sync_bench(int threaded, long iters, long warmup)
{
	dlm_lshandle_t ls = open_ls();
	int fd = dlm_ls_get_fd(ls);
	if (threaded && dlm_ls_pthread_init(ls))
		die("dlm_ls_pthread_init");
	const char *name = "bench-sync";
	unsigned len = (unsigned)strlen(name);
	uint64_t *pair = malloc(sizeof(uint64_t) * (size_t)iters);
	uint64_t *lock = malloc(sizeof(uint64_t) * (size_t)iters);
	if (!pair || !lock)
		die("malloc");
	struct dlm_lksb lksb;
	memset(&lksb, 0, sizeof lksb);
	for (long i = 0; i < warmup + iters; i++) {
		uint64_t t0 = now_ns();
		if (threaded) {
			if (dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, 0, name, len, 0, NULL, NULL, NULL) || lksb.sb_status)
				die("dlm_ls_lock_wait: status %d", lksb.sb_status);
		} else {
			poll_lock(ls, fd, &lksb, name);
		}
		uint64_t t1 = now_ns();
		if (threaded) {
			if (dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb) || lksb.sb_status != EUNLOCK)
				die("dlm_ls_unlock_wait: status %d", lksb.sb_status);
		} else {
			poll_unlock(ls, fd, &lksb);
		}
		uint64_t t2 = now_ns();
		if (i >= warmup) {
			pair[i - warmup] = t2 - t0;
			lock[i - warmup] = t1 - t0;
		}
	}
	print_stats(threaded ? "sync_wait" : "sync_poll", summarize(pair, (size_t)iters));
	print_stats(threaded ? "sync_wait_lock" : "sync_poll_lock", summarize(lock, (size_t)iters));
	dlm_close_lockspace(ls);
	return 0;
}

/* ----- async throughput ------------------------------------------------- */

struct slot {
	struct dlm_lksb lksb;
	char name[32];
	int locking; /* the operation in flight: 1 lock, 0 unlock */
	int ready;   /* completed, next operation not issued yet */
};

static struct slot **ready_list;
static int nready;
static long pairs;

static void slot_ast(void *arg)
{
	struct slot *s = arg;
	if (s->locking && s->lksb.sb_status != 0)
		die("async lock %s: status %d", s->name, s->lksb.sb_status);
	if (!s->locking) {
		if (s->lksb.sb_status != EUNLOCK)
			die("async unlock %s: status %d", s->name, s->lksb.sb_status);
		pairs++;
	}
	s->ready = 1;
	ready_list[nready++] = s;
}

static void slot_issue(dlm_lshandle_t ls, struct slot *s, int lock)
{
	s->ready = 0;
	s->locking = lock;
	int r = lock ? dlm_ls_lock(ls, LKM_EXMODE, &s->lksb, 0, s->name, (unsigned)strlen(s->name), 0, slot_ast, s, NULL, NULL)
		     : dlm_ls_unlock(ls, s->lksb.sb_lkid, 0, &s->lksb, s);
	if (r)
		die("async %s %s", lock ? "lock" : "unlock", s->name);
}

static int async_bench(double seconds, int depth)
{
	dlm_lshandle_t ls = open_ls();
	int fd = dlm_ls_get_fd(ls);
	struct slot *slots = calloc((size_t)depth, sizeof *slots);
	ready_list = calloc((size_t)depth, sizeof *ready_list);
	if (!slots || !ready_list)
		die("calloc");
	for (int i = 0; i < depth; i++) {
		snprintf(slots[i].name, sizeof slots[i].name, "async-%03d", i);
		slot_issue(ls, &slots[i], 1);
	}
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t start = now_ns();
	uint64_t warm_end = start + 500000000u;
	uint64_t end = warm_end + (uint64_t)(seconds * 1e9);
	long pairs_at_warm = -1;
	uint64_t t_warm = 0, t_end = 0;
	long calls = 0, dispatches = 0;
	for (;;) {
		uint64_t t = now_ns();
		if (pairs_at_warm < 0 && t >= warm_end) {
			pairs_at_warm = pairs;
			t_warm = t;
			calls = dispatches = 0;
		}
		if (t >= end) {
			t_end = t;
			break;
		}
		if (poll(&p, 1, 10000) < 0 && errno != EINTR)
			die("poll");
		if (dlm_dispatch(fd) < 0 && errno != EAGAIN)
			die("dlm_dispatch");
		dispatches++;
		int n = nready;
		nready = 0;
		for (int i = 0; i < n; i++) {
			struct slot *s = ready_list[i];
			slot_issue(ls, s, !s->locking);
			calls++;
		}
	}
	double secs = (t_end - t_warm) / 1e9;
	double rate = (pairs - pairs_at_warm) / secs;
	long in_window = pairs - pairs_at_warm;
	/* Let what is in flight finish before closing. */
	for (int left = 1; left;) {
		int n = nready;
		nready = 0;
		for (int i = 0; i < n; i++)
			if (ready_list[i]->locking)
				slot_issue(ls, ready_list[i], 0);
		left = 0;
		for (int i = 0; i < depth; i++)
			if (!(slots[i].ready && !slots[i].locking))
				left = 1;
		if (left) {
			poll(&p, 1, 1000);
			dlm_dispatch(fd);
		}
	}
	/* total_pairs: every pair of the run, warm-up and drain included. */
	printf("result async depth=%d pairs=%ld seconds=%.3f pairs_per_s=%.0f calls_per_dispatch=%.2f total_pairs=%ld\n", depth,
	       in_window, secs, rate, dispatches ? (double)calls / dispatches : 0.0, pairs);
	fflush(stdout);
	dlm_close_lockspace(ls);
	return 0;
}

/* ----- handover between two processes ----------------------------------- */

struct shared {
	volatile int ready;
	volatile int last; /* who held the lock last: 0, 1, or -1 */
	long grants[2];
	long basts[2];
	long changes;
	uint64_t start, end[2];
};

static long *bast_counter;
static void count_bast(void *arg)
{
	(void)arg;
	__sync_fetch_and_add(bast_counter, 1);
}

static void handover_player(struct shared *sh, int me, double seconds)
{
	dlm_lshandle_t ls = open_ls();
	if (dlm_ls_pthread_init(ls))
		die("dlm_ls_pthread_init");
	bast_counter = &sh->basts[me];
	const char *name = "bench-handover";
	unsigned len = (unsigned)strlen(name);
	struct dlm_lksb lksb;
	memset(&lksb, 0, sizeof lksb);
	__sync_fetch_and_add(&sh->ready, 1);
	while (sh->ready < 2 || now_ns() < sh->start)
		usleep(50);
	uint64_t end = sh->start + (uint64_t)(seconds * 1e9);
	while (now_ns() < end) {
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, 0, name, len, 0, NULL, count_bast, NULL) || lksb.sb_status)
			die("handover lock: status %d", lksb.sb_status);
		/* Under EX: the shared record is ours alone. */
		sh->grants[me]++;
		if (sh->last != me) {
			sh->changes++;
			sh->last = me;
		}
		if (dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb) || lksb.sb_status != EUNLOCK)
			die("handover unlock: status %d", lksb.sb_status);
	}
	sh->end[me] = now_ns();
	dlm_close_lockspace(ls);
}

static int handover_bench(double seconds)
{
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap");
	memset(sh, 0, sizeof *sh);
	sh->last = -1;
	/* Both start at the same instant, a little after both are ready. */
	sh->start = now_ns() + 1000000000u;
	pid_t pid[2];
	for (int k = 0; k < 2; k++) {
		pid[k] = fork();
		if (pid[k] < 0)
			die("fork");
		if (pid[k] == 0) {
			handover_player(sh, k, seconds);
			_exit(0);
		}
	}
	int rc = 0;
	for (int k = 0; k < 2; k++) {
		int st;
		waitpid(pid[k], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			rc = 1;
	}
	if (rc)
		return rc;
	uint64_t endt = sh->end[0] > sh->end[1] ? sh->end[0] : sh->end[1];
	if (sh->ready < 2 || endt <= sh->start)
		die("handover: players did not run");
	double secs = (endt - sh->start) / 1e9;
	long grants = sh->grants[0] + sh->grants[1];
	printf("result handover seconds=%.3f grants=%ld grants_per_s=%.0f changes=%ld changes_per_s=%.0f grants0=%ld grants1=%ld basts=%ld\n",
	       secs, grants, grants / secs, sh->changes, sh->changes / secs, sh->grants[0], sh->grants[1],
	       sh->basts[0] + sh->basts[1]);
	return 0;
}

/* ----- first lock on fresh names ---------------------------------------- */

/* The directory node of a name among nodes 1..n of equal weight: Jenkins'
 * one-at-a-time hash, upper 16 bits modulo the total weight (docs/CONFIG.md,
 * "Directory node of a resource"). */
static unsigned directory_node(const char *name, unsigned n)
{
	uint32_t h = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h += *p;
		h += h << 10;
		h ^= h >> 6;
	}
	h += h << 3;
	h ^= h >> 11;
	h += h << 15;
	return (h >> 16) % n + 1;
}

static int first_bench(long count, unsigned nodes)
{
	const char *s = getenv("DLM_NODEID");
	unsigned me = s ? (unsigned)atoi(s) : 1;
	dlm_lshandle_t ls = open_ls();
	int fd = dlm_ls_get_fd(ls);
	uint64_t *self = malloc(sizeof(uint64_t) * (size_t)count);
	uint64_t *other = malloc(sizeof(uint64_t) * (size_t)count);
	uint64_t *all = malloc(sizeof(uint64_t) * (size_t)count);
	uint64_t *second = malloc(sizeof(uint64_t) * (size_t)count);
	char (*names)[48] = malloc(sizeof *names * (size_t)count);
	if (!self || !other || !all || !second || !names)
		die("malloc");
	size_t ns = 0, no = 0;
	struct dlm_lksb lksb;
	memset(&lksb, 0, sizeof lksb);
	/* Warm the path (and the peer connections) on names that are not counted. */
	for (int i = 0; i < 200; i++) {
		char w[48];
		snprintf(w, sizeof w, "warm-%d-%d", (int)getpid(), i);
		poll_lock(ls, fd, &lksb, w);
		poll_unlock(ls, fd, &lksb);
	}
	for (long i = 0; i < count; i++) {
		snprintf(names[i], sizeof names[i], "first-%d-%ld", (int)getpid(), i);
		unsigned dir = directory_node(names[i], nodes);
		uint64_t t0 = now_ns();
		poll_lock(ls, fd, &lksb, names[i]);
		uint64_t d = now_ns() - t0;
		poll_unlock(ls, fd, &lksb);
		all[i] = d;
		if (dir == me)
			self[ns++] = d;
		else
			other[no++] = d;
	}
	for (long i = 0; i < count; i++) {
		uint64_t t0 = now_ns();
		poll_lock(ls, fd, &lksb, names[i]);
		second[i] = now_ns() - t0;
		poll_unlock(ls, fd, &lksb);
	}
	printf("result first_count self=%zu other=%zu nodes=%u me=%u fresh=%ld\n", ns, no, nodes, me, count + 200);
	print_stats("first_self", summarize(self, ns));
	print_stats("first_other", summarize(other, no));
	print_stats("first_all", summarize(all, (size_t)count));
	print_stats("second_all", summarize(second, (size_t)count));
	dlm_close_lockspace(ls);
	return 0;
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";
	if (!strcmp(m, "sync-wait") && argc >= 4)
		return sync_bench(1, atol(argv[2]), atol(argv[3]));
	if (!strcmp(m, "sync-poll") && argc >= 4)
		return sync_bench(0, atol(argv[2]), atol(argv[3]));
	if (!strcmp(m, "async") && argc >= 4)
		return async_bench(atof(argv[2]), atoi(argv[3]));
	if (!strcmp(m, "handover") && argc >= 3)
		return handover_bench(atof(argv[2]));
	if (!strcmp(m, "first") && argc >= 4)
		return first_bench(atol(argv[2]), (unsigned)atoi(argv[3]));
	fprintf(stderr, "usage: lockbench sync-wait|sync-poll ITERS WARMUP | async SECONDS DEPTH | handover SECONDS | first COUNT NODES\n");
	return 2;
}
