/* A lockspace left on the node that masters its resources: node 2 takes
 * EX on "x" (so node 2 masters it) and releases the lockspace with the lock
 * held; node 1, which has already talked to node 2 about "x", must then be
 * granted "x" — its next request may not go unanswered because the master's
 * node no longer has the lockspace open. */
#include "common.h"
#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int done;
static void on_ast(void *arg) { (void)arg; pthread_mutex_lock(&mu); done++; pthread_mutex_unlock(&mu); }

/* EX NOQUEUE on name: its status, or -1 if no answer came within 10 s. */
static int probe(dlm_lshandle_t ls, const char *name)
{
	struct dlm_lksb l = {0};
	pthread_mutex_lock(&mu); done = 0; pthread_mutex_unlock(&mu);
	if (dlm_ls_lock(ls, LKM_EXMODE, &l, LKF_NOQUEUE, name, strlen(name), 0, on_ast, &l, NULL, NULL)) die("lock %s: %s", name, strerror(errno));
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&mu); int d = done; pthread_mutex_unlock(&mu);
		if (d) {
			int st = l.sb_status;
			if (st == 0) dlm_ls_unlock_wait(ls, l.sb_lkid, 0, &l);
			return st;
		}
		usleep(10000);
	}
	return -1;
}

int main(void)
{
	dlm_lshandle_t ls = join("lsleave");
	if (node_id() == 2) {
		struct dlm_lksb l = {0};
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &l, 0, "x", 1, 0, NULL, NULL, NULL) || l.sb_status) die("EX on x");
		mark("leave-held");
		await("leave-probed", 30);
		if (dlm_release_lockspace("lsleave", ls, 1)) die("release: %s", strerror(errno));
		mark("leave-left");
		await("leave-done", 30);
		return 0;
	}
	await("leave-held", 30);
	int st = probe(ls, "x");
	if (st != EAGAIN) die("x held on node 2: status %d, expected EAGAIN", st);
	mark("leave-probed");
	await("leave-left", 30);
	for (int i = 0; i < 100 && (st = probe(ls, "x")) == EAGAIN; i++) usleep(50000);
	mark("leave-done");
	if (st != 0) die("after node 2 left the lockspace: status %d (-1: no answer), expected 0", st);
	say("x granted after the lockspace was left on the node that mastered it");
	dlm_release_lockspace("lsleave", ls, 1);
	return 0;
}
