/* Figures for udlm's extensions (include/udlm.h), one node:
 *   tree    lock+unlock latency of an EX lock at the top of a lockspace
 *           beside one inside a tree (depth 1 and depth 3, parents held) in
 *           a UDLM_LSFL_HIERARCHY lockspace: what a child costs more.
 *   cycle   the delay from the moment a two-handle deadlock cycle closes to
 *           the victim's EDEADLK (deadlock_detect_ms is the node's setting:
 *           UDLM_DEADLOCK_DETECT_MS of the node's environment).
 * usage: extbench tree ITERS | extbench cycle ROUNDS
 * Prints "result NAME key=value ..." lines (bench/extbench.sh makes a
 * table). Callbacks are taken with poll + dlm_dispatch, no AST thread. */
#include "bench.h"
#include <poll.h>
#include <string.h>
#include <libdlm.h>
#include "../include/udlm.h"

struct op { struct dlm_lksb lksb; volatile int done; };

static void ast(void *arg) { ((struct op *)arg)->done = 1; }

static void wait_op(dlm_lshandle_t ls, struct op *o)
{
	int fd = dlm_ls_get_fd(ls);
	while (!o->done) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10000) <= 0) die("no callback within 10 s");
		dlm_dispatch(fd);
	}
}

static void lock(dlm_lshandle_t ls, struct op *o, int mode, uint32_t flags, const char *name, uint32_t parent)
{
	o->done = 0;
	if (!(flags & LKF_CONVERT)) o->lksb.sb_lkid = 0;
	if (dlm_ls_lock(ls, mode, &o->lksb, flags, name, strlen(name), parent, ast, o, NULL, NULL))
		die("dlm_ls_lock %s: errno %d", name, errno);
	wait_op(ls, o);
	if (o->lksb.sb_status) die("lock %s: status %d", name, o->lksb.sb_status);
}

static void unlock(dlm_lshandle_t ls, struct op *o)
{
	o->done = 0;
	if (dlm_ls_unlock(ls, o->lksb.sb_lkid, 0, &o->lksb, o)) die("unlock: errno %d", errno);
	wait_op(ls, o);
}

static void tree(int iters)
{
	dlm_lshandle_t ls = dlm_new_lockspace("extbench", 0600, UDLM_LSFL_HIERARCHY);
	if (!ls) die("dlm_new_lockspace: errno %d", errno);
	struct op parents[3];
	uint64_t *ns = calloc((size_t)iters, sizeof *ns);
	const char *label[] = { "tree_top", "tree_depth1", "tree_depth3" };
	int depth[] = { 0, 1, 3 };
	/* parents: NL on root, then NL children down to depth 3 */
	lock(ls, &parents[0], LKM_NLMODE, 0, "root", 0);
	lock(ls, &parents[1], LKM_NLMODE, 0, "p1", parents[0].lksb.sb_lkid);
	lock(ls, &parents[2], LKM_NLMODE, 0, "p2", parents[1].lksb.sb_lkid);
	for (int v = 0; v < 3; v++) {
		uint32_t parent = depth[v] == 0 ? 0 : parents[depth[v] - 1].lksb.sb_lkid;
		struct op o;
		for (int i = -iters / 10; i < iters; i++) {
			uint64_t t = now_ns();
			lock(ls, &o, LKM_EXMODE, 0, "leaf", parent);
			unlock(ls, &o);
			if (i >= 0) ns[i] = now_ns() - t;
		}
		print_stats(label[v], summarize(ns, (size_t)iters));
	}
	for (int i = 2; i >= 0; i--) unlock(ls, &parents[i]);
	dlm_release_lockspace("extbench", ls, 1);
	free(ns);
}

static void cycle(int rounds)
{
	dlm_lshandle_t a = dlm_new_lockspace("extcycle", 0600, 0);
	dlm_lshandle_t b = dlm_open_lockspace("extcycle");
	if (!a || !b) die("lockspace: errno %d", errno);
	uint64_t *ns = calloc((size_t)rounds, sizeof *ns);
	for (int r = 0; r < rounds; r++) {
		struct op a1, b2, a2, b1;
		lock(a, &a1, LKM_EXMODE, 0, "c1", 0);
		lock(b, &b2, LKM_EXMODE, 0, "c2", 0);
		a2.done = b1.done = 0;
		a2.lksb.sb_lkid = b1.lksb.sb_lkid = 0;
		if (dlm_ls_lock(a, LKM_EXMODE, &a2.lksb, 0, "c2", 2, 0, ast, &a2, NULL, NULL)) die("a2");
		uint64_t t = now_ns();
		if (dlm_ls_lock(b, LKM_EXMODE, &b1.lksb, 0, "c1", 2, 0, ast, &b1, NULL, NULL)) die("b1");
		wait_op(b, &b1);
		ns[r] = now_ns() - t;
		if (b1.lksb.sb_status != EDEADLK) die("victim status %d", b1.lksb.sb_status);
		unlock(b, &b2);
		wait_op(a, &a2);
		unlock(a, &a2);
		unlock(a, &a1);
	}
	print_stats("cycle_broken", summarize(ns, (size_t)rounds));
	dlm_close_lockspace(b);
	dlm_release_lockspace("extcycle", a, 1);
	free(ns);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "tree")) tree(atoi(argv[2]));
	else if (argc == 3 && !strcmp(argv[1], "cycle")) cycle(atoi(argv[2]));
	else die("usage: extbench tree ITERS | extbench cycle ROUNDS");
	return 0;
}
