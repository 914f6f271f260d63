/* Cross-node behaviour, checked against the kernel DLM: one program, run on
 * node 1 and node 2 of a two-node cluster, that synchronises only through
 * the DLM itself (so that it runs unchanged on udlm and in the oracle's two
 * VMs, which share no directory). Every outcome it checks is what
 * shared/oracle/run-in-vm.sh printed for the kernel (Debian 12, 6.1): see
 * capi-tests/ORACLE-NOTES.md, "Two nodes". The resource of each step but
 * the sixth is created by node 1 first, so node 1 masters it and node 2's
 * operations on it are remote, on the kernel as on udlm.
 *
 * Node id: DLMVM_NODEID (oracle) or DLM_NODEID (udlm). */
#include <sys/types.h>
#include <sys/wait.h>
#include <libdlm.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int me;
static int failures;
static dlm_lshandle_t ls;

/* One lock's callbacks: how many, and the status and flags of the last. */
struct lk {
	struct dlm_lksb sb;
	char lvb[32];
	int asts, basts;
};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void on_ast(void *a) { struct lk *l = a; pthread_mutex_lock(&mu); l->asts++; pthread_mutex_unlock(&mu); }
static void on_bast(void *a) { struct lk *l = a; pthread_mutex_lock(&mu); l->basts++; pthread_mutex_unlock(&mu); }
static int asts(struct lk *l) { pthread_mutex_lock(&mu); int n = l->asts; pthread_mutex_unlock(&mu); return n; }
static int basts(struct lk *l) { pthread_mutex_lock(&mu); int n = l->basts; pthread_mutex_unlock(&mu); return n; }
static void init(struct lk *l, int valblk)
{
	memset(l, 0, sizeof *l);
	if (valblk) l->sb.sb_lvbptr = l->lvb;
}
/* Waits for the lock's n-th AST, at most 30 s. */
static void wait_asts(struct lk *l, int n)
{
	for (int i = 0; i < 3000 && asts(l) < n; i++) usleep(10000);
}
static void wait_basts(struct lk *l, int n)
{
	for (int i = 0; i < 3000 && basts(l) < n; i++) usleep(10000);
}

static void check(const char *what, long got, long want)
{
	printf("[node %d] %-58s %ld%s\n", me, what, got, got == want ? "" : "   <-- MISMATCH");
	if (got != want) {
		printf("[node %d]   expected %ld\n", me, want);
		failures++;
	}
	fflush(stdout);
}

static int lock(struct lk *l, int mode, int flags, const char *name)
{
	return dlm_ls_lock(ls, mode, &l->sb, flags, name, strlen(name), 0, on_ast, l, on_bast, NULL);
}
static int lock_sync(struct lk *l, int mode, int flags, const char *name)
{
	int before = asts(l);
	int rv = lock(l, mode, flags, name);
	if (rv == 0) wait_asts(l, before + 1);
	return rv ? -errno : l->sb.sb_status;
}
static int unlock_sync(struct lk *l, int flags)
{
	int before = asts(l);
	int rv = dlm_ls_unlock(ls, l->sb.sb_lkid, flags, &l->sb, l);
	if (rv == 0) wait_asts(l, before + 1);
	return rv ? -errno : l->sb.sb_status;
}

/* Barrier k: this node holds EX on "b<k>-<me>" from now to the end, and
 * waits until a NOQUEUE probe of the other node's finds it held. */
static struct lk barrier_locks[64];
static void barrier(int k)
{
	char mine[16], theirs[16];
	snprintf(mine, sizeof mine, "b%d-%d", k, me);
	snprintf(theirs, sizeof theirs, "b%d-%d", k, 3 - me);
	struct lk *b = &barrier_locks[k];
	init(b, 0);
	if (dlm_ls_lock_wait(ls, LKM_EXMODE, &b->sb, 0, mine, strlen(mine), 0, NULL, NULL, NULL) || b->sb.sb_status) {
		printf("[node %d] barrier %d: own lock failed\n", me, k);
		exit(2);
	}
	for (int i = 0; i < 6000; i++) {
		struct dlm_lksb p = {0};
		if (dlm_ls_lock_wait(ls, LKM_PRMODE, &p, LKF_NOQUEUE, theirs, strlen(theirs), 0, NULL, NULL, NULL) == 0) {
			if (p.sb_status == EAGAIN) return;
			if (p.sb_status == 0) dlm_ls_unlock_wait(ls, p.sb_lkid, 0, &p);
		}
		usleep(10000);
	}
	printf("[node %d] barrier %d: the other node never came\n", me, k);
	exit(2);
}

/* The start of steps 3, 4 and 16: both nodes take PR on `name` (node 1
 * first, so that it masters it), then node 1 converts to EX, which waits
 * for node 2's PR. Uses barriers k, k+1 and k+2. */
static void both_pr_node_1_converts(struct lk *l, int step, const char *name, int k)
{
	char what[64];
	init(l, 0);
	snprintf(what, sizeof what, "%d PR on %s", step, name);
	if (me == 1) check(what, lock_sync(l, LKM_PRMODE, 0, name), 0);
	barrier(k);
	if (me == 2) check(what, lock_sync(l, LKM_PRMODE, 0, name), 0);
	barrier(k + 1);
	if (me == 1) {
		snprintf(what, sizeof what, "%d node 1's PR->EX: return", step);
		check(what, lock(l, LKM_EXMODE, LKF_CONVERT, name), 0);
		usleep(300000);
		snprintf(what, sizeof what, "%d its status while node 2 holds PR", step);
		check(what, l->sb.sb_status, EINPROG);
	}
	barrier(k + 2);
}

int main(void)
{
	const char *id = getenv("DLMVM_NODEID");
	if (!id) id = getenv("DLM_NODEID");
	me = id ? atoi(id) : 0;
	if (me != 1 && me != 2) { printf("no node id (DLMVM_NODEID or DLM_NODEID)\n"); return 2; }
	setvbuf(stdout, NULL, _IOLBF, 0);
	ls = dlm_new_lockspace("xnode", 0600, 0);
	if (!ls) { printf("[node %d] dlm_new_lockspace: %s\n", me, strerror(errno)); return 2; }
	dlm_ls_pthread_init(ls);
	barrier(0);

	/* 1. NOQUEUE against a remote holder: EAGAIN, and the holder gets no
	 *    BAST; a queued request then does BAST it, and a down-conversion
	 *    by the holder grants the waiter. */
	struct lk a, w;
	init(&a, 0); init(&w, 0);
	if (me == 1) check("1 EX on r1", lock_sync(&a, LKM_EXMODE, 0, "r1"), 0);
	barrier(1);
	if (me == 2) {
		check("1 PR NOQUEUE on r1 held EX remotely: status", lock_sync(&w, LKM_PRMODE, LKF_NOQUEUE, "r1"), EAGAIN);
		check("1 its ASTs", asts(&w), 1);
	}
	barrier(2);
	if (me == 1) { usleep(300000); check("1 BASTs to the EX holder after the NOQUEUE", basts(&a), 0); }
	barrier(3);
	if (me == 2) {
		init(&w, 0);
		check("1 PR queued on r1: return", lock(&w, LKM_PRMODE, 0, "r1"), 0);
	}
	if (me == 1) {
		wait_basts(&a, 1);
		check("1 BASTs to the EX holder after a queued PR", basts(&a), 1);
		check("1 EX->PR conversion by the holder", lock_sync(&a, LKM_PRMODE, LKF_CONVERT, "r1"), 0);
	}
	if (me == 2) {
		wait_asts(&w, 1);
		check("1 queued PR granted after the down-conversion", w.sb.sb_status, 0);
	}
	barrier(4);
	check("1 unlock", unlock_sync(me == 1 ? &a : &w, 0), EUNLOCK);

	/* 2. LVB: written by node 1 on EX->NL, read by node 2 with PR. */
	init(&a, 1); init(&w, 1);
	if (me == 1) {
		check("2 EX|VALBLK on r2", lock_sync(&a, LKM_EXMODE, LKF_VALBLK, "r2"), 0);
		strcpy(a.lvb, "lvb-from-node-1");
		check("2 EX->NL|VALBLK", lock_sync(&a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "r2"), 0);
	}
	barrier(5);
	if (me == 2) {
		check("2 PR|VALBLK on r2", lock_sync(&w, LKM_PRMODE, LKF_VALBLK, "r2"), 0);
		check("2 LVB read on node 2 matches", strcmp(w.lvb, "lvb-from-node-1") == 0, 1);
		check("2 sb_flags", w.sb.sb_flags, 0);
		check("2 unlock", unlock_sync(&w, 0), EUNLOCK);
	}
	barrier(6);
	if (me == 1) check("2 unlock", unlock_sync(&a, 0), EUNLOCK);

	/* 3. Conversion deadlock across nodes: both hold PR on r3; node 1
	 *    converts to EX (queued), then node 2 does. */
	both_pr_node_1_converts(&a, 3, "r3", 7);
	if (me == 2) {
		check("3 node 2's PR->EX: status", lock_sync(&a, LKM_EXMODE, LKF_CONVERT, "r3"), EDEADLK);
		check("3 node 2's BASTs", basts(&a), 1);
		check("3 node 2 unlocks its PR", unlock_sync(&a, 0), EUNLOCK);
	}
	if (me == 1) {
		wait_asts(&a, 2);
		check("3 node 1's conversion granted", a.sb.sb_status, 0);
		check("3 node 1's BASTs", basts(&a), 0);
	}
	barrier(10);
	if (me == 1) check("3 unlock", unlock_sync(&a, 0), EUNLOCK);

	/* 4. CONVDEADLK across nodes: the same, with LKF_CONVDEADLK on node 2's
	 *    conversion: node 2's PR is demoted to NL and its EX granted later. */
	both_pr_node_1_converts(&a, 4, "r4", 11);
	if (me == 2) {
		check("4 node 2's PR->EX|CONVDEADLK: return", lock(&a, LKM_EXMODE, LKF_CONVERT | LKF_CONVDEADLK, "r4"), 0);
		usleep(500000);
		check("4 node 2's ASTs meanwhile", asts(&a), 1);
		check("4 node 2's status meanwhile", a.sb.sb_status, EINPROG);
		check("4 node 2's BASTs meanwhile", basts(&a), 1);
	}
	if (me == 1) {
		wait_asts(&a, 2);
		check("4 node 1's conversion granted", a.sb.sb_status, 0);
		check("4 node 1's sb_flags", a.sb.sb_flags, 0);
	}
	barrier(22);
	if (me == 1) check("4 node 1 unlocks", unlock_sync(&a, 0), EUNLOCK);
	if (me == 2) {
		wait_asts(&a, 2);
		check("4 node 2's conversion granted", a.sb.sb_status, 0);
		check("4 node 2's sb_flags (DLM_SBF_DEMOTED)", a.sb.sb_flags, DLM_SBF_DEMOTED);
		check("4 node 2 unlocks", unlock_sync(&a, 0), EUNLOCK);
	}
	barrier(14);

	/* 5. Cancel of a remote request queued behind node 1's EX: ECANCEL,
	 *    and the BAST it caused stays the holder's only one. */
	init(&a, 0); init(&w, 0);
	if (me == 1) check("5 EX on r5", lock_sync(&a, LKM_EXMODE, 0, "r5"), 0);
	barrier(15);
	if (me == 2) {
		check("5 EX queued on r5: return", lock(&w, LKM_EXMODE, 0, "r5"), 0);
		usleep(300000);
		check("5 cancel", unlock_sync(&w, LKF_CANCEL), ECANCEL);
		check("5 its ASTs", asts(&w), 1);
	}
	barrier(16);
	if (me == 1) {
		check("5 BASTs to the holder", basts(&a), 1);
		check("5 unlock", unlock_sync(&a, 0), EUNLOCK);
	}

	/* 6. A process on node 2 holding EX (r6 is mastered on node 2) is
	 *    killed while node 1's request waits behind it: node 1 is granted. */
	init(&a, 0);
	pid_t child = -1;
	if (me == 2) {
		child = fork();
		if (child == 0) {
			dlm_lshandle_t cls = dlm_open_lockspace("xnode");
			struct dlm_lksb s = {0};
			if (!cls || dlm_ls_pthread_init(cls)) _exit(3);
			if (dlm_ls_lock_wait(cls, LKM_EXMODE, &s, 0, "r6", 2, 0, NULL, NULL, NULL) || s.sb_status) _exit(4);
			for (;;) pause();
		}
		int held = 0;
		for (int i = 0; i < 600 && !held; i++) {
			struct dlm_lksb p = {0};
			if (dlm_ls_lock_wait(ls, LKM_PRMODE, &p, LKF_NOQUEUE, "r6", 2, 0, NULL, NULL, NULL) == 0) {
				if (p.sb_status == EAGAIN) held = 1;
				else if (p.sb_status == 0) dlm_ls_unlock_wait(ls, p.sb_lkid, 0, &p);
			}
			if (!held) usleep(50000);
		}
		check("6 a child process holds EX on r6", held, 1);
	}
	barrier(17);
	if (me == 1) {
		check("6 EX on r6 held by node 2's process: return", lock(&a, LKM_EXMODE, 0, "r6"), 0);
		usleep(300000);
		check("6 its status while that process lives", a.sb.sb_status, EINPROG);
	}
	barrier(18);
	if (me == 2) {
		kill(child, SIGKILL);
		int st;
		waitpid(child, &st, 0);
		check("6 the child was killed", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, 1);
	}
	if (me == 1) {
		wait_asts(&a, 1);
		check("6 granted once that process died", a.sb.sb_status, 0);
		check("6 unlock", unlock_sync(&a, 0), EUNLOCK);
	}
	barrier(19);

	/* 7. NL held on node 1 keeps r7 mastered there; node 2's QUECVT NL->EX
	 *    of its own lock publishes an LVB that node 1 reads. */
	init(&a, 1); init(&w, 1);
	if (me == 1) check("7 NL on r7", lock_sync(&a, LKM_NLMODE, 0, "r7"), 0);
	barrier(23);
	if (me == 2) {
		check("7 NL on r7", lock_sync(&w, LKM_NLMODE, LKF_VALBLK, "r7"), 0);
		check("7 NL->EX|QUECVT|VALBLK", lock_sync(&w, LKM_EXMODE, LKF_CONVERT | LKF_QUECVT | LKF_VALBLK, "r7"), 0);
		strcpy(w.lvb, "published-on-ex-nl");
		/* Published by the down-conversion: what an unlock with VALBLK
		 * stores is unspecified through libdlm (spec 5.6). */
		check("7 EX->NL|VALBLK", lock_sync(&w, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "r7"), 0);
		check("7 unlock", unlock_sync(&w, 0), EUNLOCK);
	}
	barrier(24);
	if (me == 1) {
		check("7 NL->PR|VALBLK", lock_sync(&a, LKM_PRMODE, LKF_CONVERT | LKF_VALBLK, "r7"), 0);
		check("7 LVB node 2 published reads back", strcmp(a.lvb, "published-on-ex-nl") == 0, 1);
		check("7 unlock", unlock_sync(&a, 0), EUNLOCK);
	}
	barrier(25);

	/* 8. An orphan on node 2 (a PERSISTENT lock of a process that exited)
	 *    keeps node 1 out until node 2 purges it by pid. */
	if (me == 2) {
		pid_t c = fork();
		if (c == 0) {
			dlm_lshandle_t cls = dlm_open_lockspace("xnode");
			struct dlm_lksb s = {0};
			if (!cls || dlm_ls_pthread_init(cls)) _exit(3);
			if (dlm_ls_lock_wait(cls, LKM_PRMODE, &s, LKF_PERSISTENT, "r8", 2, 0, NULL, NULL, NULL) || s.sb_status) _exit(4);
			_exit(0);
		}
		int st;
		waitpid(c, &st, 0);
		check("8 child took PERSISTENT PR on r8 and exited", WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
		child = c;
	}
	barrier(26);
	init(&a, 0);
	if (me == 1) check("8 EX NOQUEUE on r8 with node 2's orphan", lock_sync(&a, LKM_EXMODE, LKF_NOQUEUE, "r8"), EAGAIN);
	barrier(27);
	if (me == 2) check("8 purge of the orphan by node id and pid", dlm_ls_purge(ls, 2, child), 0);
	barrier(28);
	if (me == 1) {
		init(&a, 0);
		check("8 EX NOQUEUE on r8 after the purge", lock_sync(&a, LKM_EXMODE, LKF_NOQUEUE, "r8"), 0);
		check("8 unlock", unlock_sync(&a, 0), EUNLOCK);
	}
	barrier(29);

	/* 9. A process on node 2 that holds EX|VALBLK on r9 (mastered on node
	 *    1, which wrote the LVB and keeps an NL lock there, so that the
	 *    LVB is not discarded) is killed: what node 1 reads next. */
	init(&a, 1);
	if (me == 1) {
		check("9 EX|VALBLK on r9", lock_sync(&a, LKM_EXMODE, LKF_VALBLK, "r9"), 0);
		strcpy(a.lvb, "lvb-before");
		check("9 EX->NL|VALBLK", lock_sync(&a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "r9"), 0);
	}
	barrier(30);
	if (me == 2) {
		int fds[2];
		if (pipe(fds)) return 2;
		pid_t c = fork();
		if (c == 0) {
			dlm_lshandle_t cls = dlm_open_lockspace("xnode");
			struct dlm_lksb s = {0};
			char lvb[32] = {0};
			s.sb_lvbptr = lvb;
			if (!cls || dlm_ls_pthread_init(cls)) _exit(3);
			if (dlm_ls_lock_wait(cls, LKM_EXMODE, &s, LKF_VALBLK, "r9", 2, 0, NULL, NULL, NULL) || s.sb_status) _exit(4);
			char ok = strcmp(lvb, "lvb-before") == 0;
			if (write(fds[1], &ok, 1) != 1) _exit(5);
			for (;;) pause();
		}
		char ok = 0;
		if (read(fds[0], &ok, 1) != 1) ok = -1;
		check("9 the child read node 1's LVB under EX", ok, 1);
		kill(c, SIGKILL);
		int st;
		waitpid(c, &st, 0);
	}
	barrier(31);
	if (me == 1) {
		memset(a.lvb, 0, sizeof a.lvb);
		check("9 NL->PR|VALBLK on r9 after the EX holder died", lock_sync(&a, LKM_PRMODE, LKF_CONVERT | LKF_VALBLK, "r9"), 0);
		check("9 the LVB is the one written before", strcmp(a.lvb, "lvb-before") == 0, 1);
		check("9 sb_flags (DLM_SBF_VALNOTVALID: its death invalidated the LVB)", a.sb.sb_flags, DLM_SBF_VALNOTVALID);
		check("9 unlock", unlock_sync(&a, 0), EUNLOCK);
	}
	barrier(32);

	/* 10. A plain unlock of node 2's lock while it converts NL->EX, queued
	 *     behind node 1's EX: accepted; one AST, EUNLOCK, no conversion AST. */
	init(&a, 0); init(&w, 0);
	if (me == 1) check("10 EX on r10", lock_sync(&a, LKM_EXMODE, 0, "r10"), 0);
	barrier(33);
	if (me == 2) {
		check("10 NL on r10", lock_sync(&w, LKM_NLMODE, 0, "r10"), 0);
		check("10 NL->EX: return", lock(&w, LKM_EXMODE, LKF_CONVERT, "r10"), 0);
		usleep(300000);
		check("10 its status while node 1 holds EX", w.sb.sb_status, EINPROG);
		check("10 plain unlock of the converting lock", dlm_ls_unlock(ls, w.sb.sb_lkid, 0, &w.sb, &w), 0);
		wait_asts(&w, 2);
		usleep(300000);
		check("10 ASTs (the NL grant, then one for the unlock)", asts(&w), 2);
		check("10 the last status", w.sb.sb_status, EUNLOCK);
	}
	barrier(34);
	if (me == 1) {
		check("10 BASTs to the EX holder", basts(&a), 1);
		check("10 unlock", unlock_sync(&a, 0), EUNLOCK);
	}

	/* 11. Cancel of node 2's queued NL->EX conversion: ECANCEL, and the lock
	 *     is NL again (an EX NOQUEUE by node 1 after its own unlock works). */
	init(&a, 0); init(&w, 0);
	if (me == 1) check("11 EX on r11", lock_sync(&a, LKM_EXMODE, 0, "r11"), 0);
	barrier(35);
	if (me == 2) {
		check("11 NL on r11", lock_sync(&w, LKM_NLMODE, 0, "r11"), 0);
		check("11 NL->EX: return", lock(&w, LKM_EXMODE, LKF_CONVERT, "r11"), 0);
		usleep(300000);
		check("11 cancel of the conversion", unlock_sync(&w, LKF_CANCEL), ECANCEL);
	}
	barrier(36);
	if (me == 1) {
		check("11 unlock", unlock_sync(&a, 0), EUNLOCK);
		init(&a, 0);
		check("11 EX NOQUEUE beside node 2's NL", lock_sync(&a, LKM_EXMODE, LKF_NOQUEUE, "r11"), 0);
		check("11 unlock", unlock_sync(&a, 0), EUNLOCK);
	}
	barrier(37);
	if (me == 2) check("11 unlock of the NL lock", unlock_sync(&w, 0), EUNLOCK);

	/* 12. NOQUEUE conversion against the other node's PR: EAGAIN, the lock
	 *     stays PR, no BAST; with NOQUEUEBAST the holder gets one. */
	init(&a, 0); init(&w, 0);
	if (me == 1) check("12 PR on r12", lock_sync(&a, LKM_PRMODE, 0, "r12"), 0);
	barrier(38);
	if (me == 2) {
		check("12 PR on r12", lock_sync(&w, LKM_PRMODE, 0, "r12"), 0);
		check("12 PR->EX NOQUEUE", lock_sync(&w, LKM_EXMODE, LKF_CONVERT | LKF_NOQUEUE, "r12"), EAGAIN);
	}
	barrier(39);
	if (me == 1) { usleep(300000); check("12 BASTs after the NOQUEUE conversion", basts(&a), 0); }
	barrier(40);
	if (me == 2) {
		check("12 PR->EX NOQUEUE|NOQUEUEBAST", lock_sync(&w, LKM_EXMODE, LKF_CONVERT | LKF_NOQUEUE | LKF_NOQUEUEBAST, "r12"), EAGAIN);
		check("12 PR->PR: the lock is still PR", lock_sync(&w, LKM_PRMODE, LKF_CONVERT, "r12"), 0);
	}
	barrier(41);
	if (me == 1) {
		wait_basts(&a, 1);
		check("12 BASTs after NOQUEUEBAST", basts(&a), 1);
		check("12 unlock", unlock_sync(&a, 0), EUNLOCK);
	}
	if (me == 2) check("12 unlock", unlock_sync(&w, 0), EUNLOCK);
	barrier(42);

	/* 13. ALTPR: node 1 holds PR; node 2's CW|ALTPR is granted in PR with
	 *     DLM_SBF_ALTMODE. */
	init(&a, 0); init(&w, 0);
	if (me == 1) check("13 PR on r13", lock_sync(&a, LKM_PRMODE, 0, "r13"), 0);
	barrier(43);
	if (me == 2) {
		check("13 CW|ALTPR", lock_sync(&w, LKM_CWMODE, LKF_ALTPR, "r13"), 0);
		check("13 sb_flags (DLM_SBF_ALTMODE)", w.sb.sb_flags, DLM_SBF_ALTMODE);
		check("13 unlock", unlock_sync(&w, 0), EUNLOCK);
	}
	barrier(44);
	if (me == 1) check("13 unlock", unlock_sync(&a, 0), EUNLOCK);

	/* 14. FIFO across nodes: behind node 1's EX, node 2's EX is queued,
	 *     then node 1's PR; node 1's unlock grants node 2 first. */
	struct lk b;
	init(&a, 0); init(&w, 0); init(&b, 0);
	if (me == 1) check("14 EX on r14", lock_sync(&a, LKM_EXMODE, 0, "r14"), 0);
	barrier(45);
	if (me == 2) {
		check("14 EX queued: return", lock(&w, LKM_EXMODE, 0, "r14"), 0);
		usleep(300000);
	}
	barrier(46);
	if (me == 1) {
		check("14 PR queued: return", lock(&b, LKM_PRMODE, 0, "r14"), 0);
		usleep(300000);
		check("14 unlock of the EX", unlock_sync(&a, 0), EUNLOCK);
		usleep(300000);
		check("14 node 1's PR still waits", b.sb.sb_status, EINPROG);
	}
	barrier(47);
	if (me == 2) {
		wait_asts(&w, 1);
		check("14 node 2's EX granted first", w.sb.sb_status, 0);
		check("14 unlock", unlock_sync(&w, 0), EUNLOCK);
	}
	if (me == 1) {
		wait_asts(&b, 1);
		check("14 then node 1's PR", b.sb.sb_status, 0);
		check("14 unlock", unlock_sync(&b, 0), EUNLOCK);
	}
	barrier(48);

	/* 15. IVVALBLK from node 2: node 1's next VALBLK read carries
	 *     DLM_SBF_VALNOTVALID and the last value written. */
	init(&a, 1); init(&w, 1);
	if (me == 1) check("15 NL|VALBLK on r15", lock_sync(&a, LKM_NLMODE, LKF_VALBLK, "r15"), 0);
	barrier(49);
	if (me == 2) {
		check("15 EX|VALBLK", lock_sync(&w, LKM_EXMODE, LKF_VALBLK, "r15"), 0);
		strcpy(w.lvb, "v1");
		check("15 EX->NL|VALBLK", lock_sync(&w, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "r15"), 0);
		check("15 NL->EX|VALBLK", lock_sync(&w, LKM_EXMODE, LKF_CONVERT | LKF_VALBLK, "r15"), 0);
		check("15 EX->NL|IVVALBLK", lock_sync(&w, LKM_NLMODE, LKF_CONVERT | LKF_IVVALBLK, "r15"), 0);
	}
	barrier(50);
	if (me == 1) {
		check("15 NL->PR|VALBLK", lock_sync(&a, LKM_PRMODE, LKF_CONVERT | LKF_VALBLK, "r15"), 0);
		check("15 sb_flags (DLM_SBF_VALNOTVALID)", a.sb.sb_flags, DLM_SBF_VALNOTVALID);
		check("15 the last value written", strcmp(a.lvb, "v1") == 0, 1);
		check("15 unlock", unlock_sync(&a, 0), EUNLOCK);
	}
	barrier(51);
	if (me == 2) check("15 unlock", unlock_sync(&w, 0), EUNLOCK);
	barrier(52);

	/* 16. Cancel of a conversion that CONVDEADLK demoted: ECANCEL with
	 *     sb_flags 0, and the lock stays NL (node 1 gets EX NOQUEUE). */
	init(&b, 0);
	both_pr_node_1_converts(&a, 16, "r16", 53);
	if (me == 2) {
		check("16 PR->EX|CONVDEADLK: return", lock(&a, LKM_EXMODE, LKF_CONVERT | LKF_CONVDEADLK, "r16"), 0);
		usleep(500000);
		check("16 cancel of the demoted conversion", unlock_sync(&a, LKF_CANCEL), ECANCEL);
		check("16 its sb_flags", a.sb.sb_flags, 0);
	}
	if (me == 1) {
		wait_asts(&a, 2);
		check("16 node 1's conversion granted", a.sb.sb_status, 0);
	}
	barrier(56);
	if (me == 1) {
		check("16 unlock", unlock_sync(&a, 0), EUNLOCK);
		check("16 EX NOQUEUE beside node 2's lock (NL)", lock_sync(&b, LKM_EXMODE, LKF_NOQUEUE, "r16"), 0);
		check("16 unlock", unlock_sync(&b, 0), EUNLOCK);
	}
	barrier(57);
	if (me == 2) check("16 unlock", unlock_sync(&a, 0), EUNLOCK);
	barrier(58);
	/* Leaving: a node that passed the last barrier may not go before the
	 * other has seen its barrier lock. Node 1 takes "fin" once it has;
	 * node 2 leaves when it sees "fin" held; node 1 keeps "fin" until node
	 * 2's barrier lock is gone. */
	if (me == 1) {
		struct lk fin;
		init(&fin, 0);
		if (lock_sync(&fin, LKM_EXMODE, 0, "fin")) { printf("[node 1] fin lock failed\n"); return 2; }
		int gone = 0;
		for (int i = 0; i < 3000 && !gone; i++) {
			struct dlm_lksb p = {0};
			if (dlm_ls_lock_wait(ls, LKM_PRMODE, &p, LKF_NOQUEUE, "b58-2", 5, 0, NULL, NULL, NULL) == 0 && p.sb_status == 0) {
				dlm_ls_unlock_wait(ls, p.sb_lkid, 0, &p);
				gone = 1;
			} else {
				usleep(10000);
			}
		}
	} else {
		int seen = 0;
		for (int i = 0; i < 3000 && !seen; i++) {
			struct dlm_lksb p = {0};
			if (dlm_ls_lock_wait(ls, LKM_PRMODE, &p, LKF_NOQUEUE, "fin", 3, 0, NULL, NULL, NULL) == 0) {
				if (p.sb_status == EAGAIN) seen = 1;
				else if (p.sb_status == 0) dlm_ls_unlock_wait(ls, p.sb_lkid, 0, &p);
			}
			if (!seen) usleep(10000);
		}
	}

	printf("[node %d] %s (%d mismatches)\n", me, failures ? "FAIL" : "PASS", failures);
	dlm_release_lockspace("xnode", ls, 1);
	return failures ? 1 : 0;
}
