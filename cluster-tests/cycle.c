/* A deadlock cycle across nodes (udlm extension, include/udlm.h): node k of
 * N holds EX on "cyc<k>" and then asks for EX on the next node's name, so
 * every node waits for the next one. Deadlock detection must break the
 * cycle by ending exactly one request with EDEADLK: node N's, whose handle
 * has the highest owner id. Then node N lets its lock go, and every other
 * request is granted in turn. Node N prints how long the cycle stood. */
#include "common.h"
#include "../include/udlm.h"

static void on_ast(void *arg) { (void)arg; }

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2;
	int me = node_id();
	char mine[16], next[16], tag[32];
	struct dlm_lksb held = {0}, want = {0};
	struct timespec t0, t1;
	dlm_lshandle_t ls = join("cyclels");

	snprintf(mine, sizeof mine, "cyc%d", me);
	snprintf(next, sizeof next, "cyc%d", me % n + 1);
	if (dlm_ls_lock_wait(ls, LKM_EXMODE, &held, 0, mine, strlen(mine), 0, NULL, NULL, NULL) || held.sb_status)
		die("EX on %s: %d", mine, held.sb_status);
	snprintf(tag, sizeof tag, "cyc-held-%d", me);
	mark(tag);
	/* node k asks after node k-1 did, so that node N closes the cycle */
	for (int k = 1; k <= n; k++) {
		snprintf(tag, sizeof tag, "cyc-held-%d", k);
		await(tag, 30);
	}
	if (me > 1) {
		snprintf(tag, sizeof tag, "cyc-asked-%d", me - 1);
		await(tag, 30);
		usleep(200000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (dlm_ls_lock(ls, LKM_EXMODE, &want, 0, next, strlen(next), 0, on_ast, NULL, NULL, NULL))
		die("request for %s", next);
	snprintf(tag, sizeof tag, "cyc-asked-%d", me);
	mark(tag);
	for (int i = 0; i < 3000 && want.sb_status == EINPROG; i++) usleep(10000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (me == n) {
		if (want.sb_status != EDEADLK) die("node %d's request ended with %d, expected EDEADLK", me, want.sb_status);
		say("cycle of %d nodes broken after %ld ms: this node's request got EDEADLK", n,
		    (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
		if (dlm_ls_unlock_wait(ls, held.sb_lkid, 0, &held)) die("unlock %s", mine);
	} else {
		if (want.sb_status != 0) die("node %d's request ended with %d, expected a grant", me, want.sb_status);
		say("request granted once the cycle was broken");
		if (dlm_ls_unlock_wait(ls, want.sb_lkid, 0, &want)) die("unlock %s", next);
		if (dlm_ls_unlock_wait(ls, held.sb_lkid, 0, &held)) die("unlock %s", mine);
	}
	snprintf(tag, sizeof tag, "cyc-done-%d", me);
	mark(tag);
	for (int k = 1; k <= n; k++) {
		snprintf(tag, sizeof tag, "cyc-done-%d", k);
		await(tag, 60);
	}
	dlm_release_lockspace("cyclels", ls, 1);
	return 0;
}
