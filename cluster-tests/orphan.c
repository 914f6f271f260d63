/* Orphans on a node whose resources are mastered elsewhere (every resource
 * on node 2): a process on node 1 takes a PERSISTENT PR lock and exits; the
 * lock stays (an EX NOQUEUE fails); another process on node 1 adopts it by
 * name and mode (EX: EAGAIN; PR: its id, no callback), then unlocks it; a
 * purge by pid releases another orphan. */
#include "common.h"
#include <sys/wait.h>

static int probe(dlm_lshandle_t ls, const char *name)
{
	struct dlm_lksb l = {0};
	if (dlm_ls_lock_wait(ls, LKM_EXMODE, &l, LKF_NOQUEUE, name, strlen(name), 0, NULL, NULL, NULL)) die("probe submit");
	int st = l.sb_status;
	if (st == 0) dlm_ls_unlock_wait(ls, l.sb_lkid, 0, &l);
	return st;
}

static void on_ast(void *arg) { (void)arg; }

int main(void)
{
	dlm_lshandle_t ls = join("orphanls");
	if (node_id() != 1) {
		await("orphan-done", 60);
		dlm_release_lockspace("orphanls", ls, 0);
		return 0;
	}
	pid_t child = fork();
	if (child == 0) {
		dlm_lshandle_t c = dlm_open_lockspace("orphanls");
		if (!c) _exit(2);
		dlm_ls_pthread_init(c);
		struct dlm_lksb a = {0}, b = {0};
		if (dlm_ls_lock_wait(c, LKM_PRMODE, &a, LKF_PERSISTENT, "o1", 2, 0, NULL, NULL, NULL) || a.sb_status) _exit(3);
		if (dlm_ls_lock_wait(c, LKM_PRMODE, &b, LKF_PERSISTENT, "o2", 2, 0, NULL, NULL, NULL) || b.sb_status) _exit(4);
		_exit(0); /* no unlock, no close */
	}
	int st;
	waitpid(child, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) die("child failed: %d", st);
	usleep(300000);
	if (probe(ls, "o1") != EAGAIN) die("the orphan does not block EX");
	struct dlm_lksb o = {0};
	int rv = dlm_ls_lock(ls, LKM_EXMODE, &o, LKF_ORPHAN, "o1", 2, 0, on_ast, NULL, NULL, NULL);
	if (rv != -1 || errno != EAGAIN) die("adopt in another mode: rv %d errno %d", rv, errno);
	rv = dlm_ls_lock(ls, LKM_PRMODE, &o, LKF_ORPHAN, "o1", 2, 0, on_ast, NULL, NULL, NULL);
	if (rv != 0 || o.sb_lkid == 0 || o.sb_status != EINPROG) die("adopt: rv %d lkid %u status %d", rv, o.sb_lkid, o.sb_status);
	say("adopted the orphan PR lock %u of a dead process", o.sb_lkid);
	if (dlm_ls_unlock_wait(ls, o.sb_lkid, 0, &o) || o.sb_status != EUNLOCK) die("unlock adopted: %d", o.sb_status);
	int st1 = probe(ls, "o1");
	if (st1 != 0) die("EX still blocked after the adopted lock was unlocked: %d", st1);
	if (probe(ls, "o2") != EAGAIN) die("the second orphan does not block EX");
	if (dlm_ls_purge(ls, 0, child)) die("purge");
	usleep(300000);
	if (probe(ls, "o2") != 0) die("EX still blocked after purging the dead process's orphans");
	say("purged the other orphan by pid");
	mark("orphan-done");
	dlm_release_lockspace("orphanls", ls, 1);
	return 0;
}
