/* A deadlock cycle across nodes (udlm extension, include/udlm.h): node k of
 * N holds EX on "cyc<k>" and then asks for EX on the next node's name, so
 * every node waits for the next one. Deadlock detection must break the
 * cycle by ending exactly one request with EDEADLK: node N's, whose handle
 * has the highest owner id. Then node N lets its lock go, and every other
 * request is granted in turn. Node N prints how long the cycle stood.
 * With "conv" as second argument every wait is a conversion: node k holds
 * NL on the next node's name and converts it to EX; the victim's conversion
 * ends with EDEADLK and its lock stays granted in NL. */
#include "common.h"
#include "../include/udlm.h"

static void on_ast(void *arg) { (void)arg; }

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2;
	int conv = argc > 2 && !strcmp(argv[2], "conv");
	int me = node_id();
	char mine[16], next[16], tag[32];
	struct dlm_lksb held = {0}, want = {0};
	struct timespec t0, t1;
	dlm_lshandle_t ls = join("cyclels");

	snprintf(mine, sizeof mine, "cyc%d", me);
	snprintf(next, sizeof next, "cyc%d", me % n + 1);
	if (dlm_ls_lock_wait(ls, LKM_EXMODE, &held, 0, mine, strlen(mine), 0, NULL, NULL, NULL) || held.sb_status)
		die("EX on %s: %d", mine, held.sb_status);
	if (conv && (dlm_ls_lock_wait(ls, LKM_NLMODE, &want, 0, next, strlen(next), 0, NULL, NULL, NULL) || want.sb_status))
		die("NL on %s: %d", next, want.sb_status);
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
	if (dlm_ls_lock(ls, LKM_EXMODE, &want, conv ? LKF_CONVERT : 0, next, strlen(next), 0, on_ast, NULL, NULL, NULL))
		die("%s for %s", conv ? "conversion" : "request", next);
	snprintf(tag, sizeof tag, "cyc-asked-%d", me);
	mark(tag);
	for (int i = 0; i < 3000 && want.sb_status == EINPROG; i++) usleep(10000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (me == n) {
		if (want.sb_status != EDEADLK) die("node %d's request ended with %d, expected EDEADLK", me, want.sb_status);
		say("cycle of %d nodes broken after %ld ms: this node's %s got EDEADLK", n,
		    (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000),
		    conv ? "conversion" : "request");
		if (dlm_ls_unlock_wait(ls, held.sb_lkid, 0, &held)) die("unlock %s", mine);
		/* the conversion's lock is still granted in NL: a second NL unlock proves it */
		if (conv && (dlm_ls_unlock_wait(ls, want.sb_lkid, 0, &want) || want.sb_status != EUNLOCK))
			die("unlock of the NL lock on %s after EDEADLK: %d", next, want.sb_status);
	} else {
		if (want.sb_status != 0) die("node %d's request ended with %d, expected a grant", me, want.sb_status);
		say("%s granted once the cycle was broken", conv ? "conversion" : "request");
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
