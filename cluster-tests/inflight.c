/* Operations overlapping a remote request whose reply has not arrived yet
 * (spec §6.3, §6.4, case 72), on node 1 with every resource mastered on
 * node 2: a plain unlock gets EBUSY; a force-unlock returns 0 and the lock
 * ends with a single EUNLOCK callback (the grant is not reported); a cancel
 * of a request that the master grants yields only the grant's callback; a
 * cancel of a request queued on the master yields ECANCEL. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <dirent.h>

/* The master is paused while an operation overlaps the request, so that the
 * reply cannot arrive first whatever the machine's load. */
static pid_t master_pid(void)
{
	const char *f = getenv("MASTER_PID_FILE");
	FILE *p = f ? fopen(f, "r") : NULL;
	int pid = 0;
	if (!p || fscanf(p, "%d", &pid) != 1) die("cannot read the master's pid from MASTER_PID_FILE");
	fclose(p);
	return pid;
}
/* Every thread of the process is in the stopped state. kill() returns once
 * SIGSTOP is pending, but a multi-threaded process stops only when the thread
 * that takes the signal gets a CPU and stops the others: until then another
 * thread can still answer a request (seen on a loaded 2-CPU machine). */
static int all_stopped(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d) die("opendir %s", path);
	int stopped = 1;
	struct dirent *e;
	while (stopped && (e = readdir(d))) {
		if (e->d_name[0] == '.') continue;
		char stat[300], buf[512];
		snprintf(stat, sizeof stat, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
		FILE *f = fopen(stat, "r");
		if (!f) continue; /* the thread has exited */
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		const char *paren = strrchr(buf, ')');
		if (!paren || paren[1] != ' ' || (paren[2] != 'T' && paren[2] != 't')) stopped = 0;
	}
	closedir(d);
	return stopped;
}
static void pause_master(void)
{
	pid_t pid = master_pid();
	if (kill(pid, SIGSTOP)) die("SIGSTOP");
	for (int i = 0; !all_stopped(pid); i++) {
		if (i == 5000) die("the master did not stop within 5 s of SIGSTOP");
		usleep(1000);
	}
}
static void resume_master(void) { if (kill(master_pid(), SIGCONT)) die("SIGCONT"); }

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int calls[8];
static int last_status[8];
static void on_ast(void *arg)
{
	struct dlm_lksb *l = arg;
	long i = (long)(l->sb_lvbptr);
	pthread_mutex_lock(&mu);
	calls[i]++;
	last_status[i] = l->sb_status;
	pthread_mutex_unlock(&mu);
}

static int count(int i) { pthread_mutex_lock(&mu); int c = calls[i]; pthread_mutex_unlock(&mu); return c; }

static void settle(int i, int want)
{
	for (int t = 0; t < 500 && count(i) < want; t++) usleep(10000);
	usleep(200000);
}

int main(void)
{
	dlm_lshandle_t ls = join("inflight");
	if (node_id() != 1) {
		await("inflight-done", 60);
		dlm_release_lockspace("inflight", ls, 0);
		return 0;
	}
	struct dlm_lksb l[8];
	memset(l, 0, sizeof l);
	for (long i = 0; i < 8; i++) l[i].sb_lvbptr = (char *)i; /* slot number, never dereferenced: no VALBLK */

	/* 1: plain unlock while the request is in flight */
	pause_master();
	if (dlm_ls_lock(ls, LKM_EXMODE, &l[1], 0, "r1", 2, 0, on_ast, &l[1], NULL, NULL)) die("lock r1");
	int rv = dlm_ls_unlock(ls, l[1].sb_lkid, 0, &l[1], &l[1]);
	resume_master();
	if (rv != -1 || errno != EBUSY) die("plain unlock in flight: rv %d errno %d, expected -1/EBUSY", rv, errno);
	settle(1, 1);
	if (count(1) != 1 || last_status[1] != 0) die("r1 not granted after the EBUSY");
	say("plain unlock while the request was in flight: EBUSY");

	/* 2: force-unlock while the request is in flight */
	pause_master();
	if (dlm_ls_lock(ls, LKM_EXMODE, &l[2], 0, "r2", 2, 0, on_ast, &l[2], NULL, NULL)) die("lock r2");
	rv = dlm_ls_unlock(ls, l[2].sb_lkid, LKF_FORCEUNLOCK, &l[2], &l[2]);
	resume_master();
	if (rv != 0) die("force-unlock in flight: rv %d errno %d", rv, errno);
	settle(2, 1);
	if (count(2) != 1 || last_status[2] != EUNLOCK) die("force-unlock: %d callbacks, last status %d; expected one EUNLOCK", count(2), last_status[2]);
	say("force-unlock while the request was in flight: one EUNLOCK callback");

	/* 3: cancel of a request the master grants */
	pause_master();
	if (dlm_ls_lock(ls, LKM_EXMODE, &l[3], 0, "r3", 2, 0, on_ast, &l[3], NULL, NULL)) die("lock r3");
	rv = dlm_ls_unlock(ls, l[3].sb_lkid, LKF_CANCEL, &l[3], &l[3]);
	resume_master();
	if (rv != 0) die("cancel in flight: rv %d errno %d", rv, errno);
	settle(3, 1);
	if (count(3) != 1 || last_status[3] != 0) die("cancel lost to the grant: %d callbacks, last status %d", count(3), last_status[3]);
	say("cancel that lost the race with the grant: only the grant's callback");

	/* 4: cancel of a request queued on the master */
	if (dlm_ls_lock(ls, LKM_EXMODE, &l[4], 0, "r4", 2, 0, on_ast, &l[4], NULL, NULL)) die("lock r4");
	settle(4, 1);
	if (dlm_ls_lock(ls, LKM_EXMODE, &l[5], 0, "r4", 2, 0, on_ast, &l[5], NULL, NULL)) die("lock r4 again");
	usleep(200000);
	if (count(5) != 0) die("second EX on r4 was not queued");
	rv = dlm_ls_unlock(ls, l[5].sb_lkid, LKF_CANCEL, &l[5], &l[5]);
	if (rv != 0) die("cancel queued: rv %d", rv);
	settle(5, 1);
	if (count(5) != 1 || last_status[5] != ECANCEL) die("cancel of a queued request: status %d", last_status[5]);
	say("cancel of a request queued on the master: ECANCEL");

	/* 6: a down-conversion completes at once (the master follows), so an
	 * unlock right behind it is accepted, as on the kernel DLM */
	if (dlm_ls_lock(ls, LKM_EXMODE, &l[6], 0, "r6", 2, 0, on_ast, &l[6], NULL, NULL)) die("lock r6");
	settle(6, 1);
	if (count(6) != 1 || last_status[6] != 0) die("r6 not granted");
	pause_master();
	if (dlm_ls_lock(ls, LKM_NLMODE, &l[6], LKF_CONVERT, "r6", 2, 0, on_ast, &l[6], NULL, NULL)) die("convert r6");
	rv = dlm_ls_unlock(ls, l[6].sb_lkid, 0, &l[6], &l[6]);
	resume_master();
	if (rv != 0) die("unlock right after a down-conversion: rv %d errno %d", rv, errno);
	settle(6, 3);
	if (count(6) != 3 || last_status[6] != EUNLOCK) die("down-conversion then unlock: %d callbacks, last %d", count(6), last_status[6]);
	say("down-conversion completed at once; the unlock behind it was accepted");
	mark("inflight-done");
	dlm_release_lockspace("inflight", ls, 1);
	return 0;
}
