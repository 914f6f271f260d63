/* Node-failure recovery scenarios (run by recovery.sh). One program, the
 * role chosen by argv; every role runs on one node (DLM_NODEID) of an
 * N-node cluster in which node V is SIGKILLed (udlmd, then every program
 * on it) once all roles on all nodes have marked themselves ready.
 *
 *   recover ROLE N V [ARGS]        A = the lowest surviving node, B = the next
 *
 *   waiters N V MASTER TAG   V holds EX on R (R mastered on MASTER: V itself,
 *                            or a survivor holding NL on it first); every
 *                            survivor waits for EX on R; after the kill each
 *                            is granted, holds 100 ms and unlocks (log TAG)
 *   lvbx N V                 V holds EX+VALBLK on X1 (mastered on V) and
 *                            PW+VALBLK on X2 (mastered on A); A waits PR+VALBLK
 *                            on X1, B EX+VALBLK on X2: both grants must have
 *                            DLM_SBF_VALNOTVALID
 *   lvbk N V                 V writes K1 and K2 (mastered on V) then holds PR
 *                            on K1, NL on K2; B holds PR+VALBLK on both having
 *                            read them; after the kill A's PR+VALBLK reads
 *                            the same values without DLM_SBF_VALNOTVALID
 *   surv N V                 A holds EX on S (mastered on V, which holds NL);
 *                            after recovery (B's wait on SP, held EX by V,
 *                            is granted) B's NOQUEUE EX on S gets EAGAIN, B
 *                            queues EX, A unlocks (EUNLOCK), B is granted
 *                            (log "surv")
 *   mutex N V FIRST ITER [LS]  everyone loops EX on M (first taken by
 *                            FIRST); V, after ITER rounds, takes M and keeps
 *                            it; survivors go on until 5 grants after the
 *                            kill (V = 0: no kill, ITER rounds each); log
 *                            "mutex"; LS (default rec-mutex) is the lockspace:
 *                            another one on one node makes a real overlap
 *   counter-hold N V         V: NL on C (so C is mastered on V), then waits
 *   counter N V FILE INC     NL on C; once c-go exists, INC increments of
 *                            FILE each under EX (NL->EX, EX->NL)
 *   kill NODE UDLMD_PID      SIGKILL the node's udlmd, then every program
 *                            registered for the node (SYNC_DIR/pids/NODE);
 *                            wait until all are dead; append "killed" to
 *                            their logs; write the files "killing" (before
 *                            the signals) and "killed" (after the deaths,
 *                            holding that time), or "kill-failed"
 *
 * Log lines (for mutex_check): "grant|release|killed <CLOCK_MONOTONIC ns>
 * <node> <pid>", one write() each to a file opened O_APPEND; a grant is
 * stamped with the time its AST ran, a release just before the unlock call.
 *
 * Every wait is bounded: a request that may need the recovery until
 * RECOVERY_DEADLINE_MS after the kill (end_of), others by fixed bounds. The
 * library may itself block a call while its node recovers, so a watchdog
 * thread bounds every libdlm call the same way. Failures print one
 * "[node N] FAIL: ..." line and exit 1. */
#include <sys/types.h>
#include "common.h"
#include <dirent.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#define PREKILL_MAX_MS 40000 /* the longest a role waits for the kill */
#define STEP_MS 5000         /* a step that needs no recovery */
#define POST_MS 4000         /* every role is done this long after the deadline */

static int N, V, me, A, B;
static long long deadline_ns;
static int logfd = -1;

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static char *spath(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(buf, len, "%s/", getenv("SYNC_DIR"));
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
	return buf;
}

static int exists(const char *name)
{
	char p[512];
	return access(spath(p, sizeof p, "%s", name), F_OK) == 0;
}

static void markf(const char *fmt, ...)
{
	char w[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w, sizeof w, fmt, ap);
	va_end(ap);
	mark(w);
}

static void ready(const char *check) { markf("ready-%s-%d", check, me); }

/* A file in SYNC_DIR holding one ns value; 0 when absent. */
static long long read_ns(const char *name)
{
	char p[512];
	FILE *f = fopen(spath(p, sizeof p, "%s", name), "r");
	if (!f) return 0;
	long long v = 0;
	if (fscanf(f, "%lld", &v) != 1) v = 0;
	fclose(f);
	return v;
}

static void write_ns(const char *name, long long v)
{
	char p[512], t[520];
	spath(p, sizeof p, "%s", name);
	snprintf(t, sizeof t, "%s.tmp", p);
	FILE *f = fopen(t, "w");
	if (!f) die("cannot create %s", t);
	fprintf(f, "%lld\n", v);
	if (fclose(f) || rename(t, p)) die("cannot write %s", p);
}

/* When node V was found dead (the "killed" file), 0 before; read at most
 * every 10 ms. */
static long long killed_ns(void)
{
	static long long k, last;
	if (k || V == 0) return k;
	long long t = now_ns();
	if (t - last < 10000000LL) return 0;
	last = t;
	if (exists("kill-failed")) die("the killer could not confirm that node %d died", V);
	return k = read_ns("killed");
}

static void register_pid(const char *log)
{
	char p[512];
	FILE *f = fopen(spath(p, sizeof p, "pids/%d/%d", me, (int)getpid()), "w");
	if (!f) die("cannot create %s", p);
	if (log) fprintf(f, "%s\n", log);
	fclose(f);
}

/* Registers this process for the killer and opens the shared log TAG.log. */
static void start(const char *tag, int with_log)
{
	char p[512];
	spath(p, sizeof p, "%s.log", tag);
	if (with_log) {
		logfd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (logfd < 0) die("cannot open %s", p);
	}
	register_pid(with_log ? p : NULL);
}

static long long logev_at(const char *what, long long t)
{
	char b[128];
	int n = snprintf(b, sizeof b, "%s %lld %d %d\n", what, t, me, (int)getpid());
	if (write(logfd, b, n) != n) die("log write");
	return t;
}

static long long logev(const char *what) { return logev_at(what, now_ns()); }

static void hold_forever(void)
{
	for (;;) pause();
}

/* ---- the watchdog: library calls may block (a node in recovery holds
 * its programs' calls), so each one is bounded like a wait ---- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_active, g_aware = 1, g_ms;
static long long g_start;
static char g_what[128];

static long long end_of(long long start, int aware, int ms, long long k);

static void guard(const char *what, int ms)
{
	pthread_mutex_lock(&g_mu);
	snprintf(g_what, sizeof g_what, "%s", what);
	g_start = now_ns();
	g_ms = ms;
	g_active = 1;
	pthread_mutex_unlock(&g_mu);
}

static void unguard(void)
{
	pthread_mutex_lock(&g_mu);
	g_active = 0;
	pthread_mutex_unlock(&g_mu);
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		usleep(50000);
		pthread_mutex_lock(&g_mu);
		int active = g_active, aware = g_aware, ms = g_ms;
		long long start = g_start;
		char what[128];
		memcpy(what, g_what, sizeof what);
		pthread_mutex_unlock(&g_mu);
		if (!active) continue;
		long long k = V ? read_ns("killed") : 0;
		if (now_ns() > end_of(start, aware, ms, k) + 500000000LL) {
			fprintf(stderr, "[node %d] FAIL: %s: still blocked in libdlm %.0f ms after the call%s\n", me,
				what, (now_ns() - start) / 1e6, V && !k ? " (node not killed yet)" : "");
			_exit(1);
		}
	}
	return NULL;
}

static dlm_lshandle_t join_bounded(const char *name)
{
	char what[128];
	snprintf(what, sizeof what, "creating/joining lockspace %s", name);
	int aware = g_aware;
	g_aware = 0;
	guard(what, 10000);
	dlm_lshandle_t ls = join(name);
	unguard();
	g_aware = aware;
	return ls;
}
#define join join_bounded

/* ---- requests with bounded waits ---- */

struct req {
	struct dlm_lksb lksb;
	char lvb[DLM_LVB_LEN];
	int done;
	long long t_ast; /* when the completion AST ran */
	const char *name;
};

static void on_ast(void *arg)
{
	struct req *r = arg;
	r->t_ast = now_ns();
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
}

/* A grant is logged with the time its AST ran, the earliest the program
 * knows it holds the lock (a later time would shorten its interval). */
static long long log_grant(struct req *r) { return logev_at("grant", r->t_ast); }
static int is_done(struct req *r) { return __atomic_load_n(&r->done, __ATOMIC_ACQUIRE); }

static const char *mname(int m)
{
	static const char *n[] = { "NL", "CR", "CW", "PR", "PW", "EX" };
	return m >= 0 && m <= 5 ? n[m] : "?";
}

static void submit(dlm_lshandle_t ls, struct req *r, int mode, int flags, const char *name)
{
	__atomic_store_n(&r->done, 0, __ATOMIC_RELEASE);
	r->name = name;
	r->lksb.sb_lvbptr = r->lvb;
	char what[128];
	snprintf(what, sizeof what, "dlm_ls_lock(%s %s flags 0x%x)", mname(mode), name, flags);
	guard(what, STEP_MS);
	if (dlm_ls_lock(ls, mode, &r->lksb, flags, name, strlen(name), 0, on_ast, r, NULL, NULL))
		die("%s: %s", what, strerror(errno));
	unguard();
}

static void submit_unlock(dlm_lshandle_t ls, struct req *r)
{
	__atomic_store_n(&r->done, 0, __ATOMIC_RELEASE);
	char what[128];
	snprintf(what, sizeof what, "dlm_ls_unlock(%s)", r->name);
	guard(what, STEP_MS);
	if (dlm_ls_unlock(ls, r->lksb.sb_lkid, 0, &r->lksb, r))
		die("%s: %s", what, strerror(errno));
	unguard();
}

static double since_kill_ms(void)
{
	long long k = read_ns("killed");
	return k ? (now_ns() - k) / 1e6 : -1;
}

/* A wait that needs no recovery. */
static void wait_local(struct req *r, const char *what, int ms)
{
	long long end = now_ns() + ms * 1000000LL;
	while (!is_done(r)) {
		if (now_ns() > end) die("%s on %s: no completion within %d ms", what, r->name, ms);
		usleep(2000);
	}
}

/* The end of a wait begun at start. Plain: ms later. Recovery-aware (a
 * kill scenario, the wait may need node V's recovery): before the kill at
 * most PREKILL_MAX_MS; after it until RECOVERY_DEADLINE_MS after the kill,
 * or ms after the start if later, but never past POST_MS after that
 * deadline (a chain of slow steps must not stretch the run). */
static long long end_of(long long start, int aware, int ms, long long k)
{
	if (!aware || V == 0) return start + ms * 1000000LL;
	if (!k) return start + PREKILL_MAX_MS * 1000000LL;
	long long end = k + deadline_ns, lo = start + ms * 1000000LL, cap = k + deadline_ns + POST_MS * 1000000LL;
	if (end < lo) end = lo;
	if (end > cap) end = cap;
	return end;
}

/* A wait that may need the recovery of node V (see end_of). With
 * must_follow_kill, completing before the killer started is a failure:
 * node V still held the lock. */
static void wait_recovery(struct req *r, const char *what, int must_follow_kill)
{
	long long t0 = now_ns();
	for (;;) {
		if (is_done(r)) {
			if (must_follow_kill && !read_ns("killing"))
				die("%s on %s completed (status %d) while node %d was alive and held it", what, r->name,
				    r->lksb.sb_status, V);
			return;
		}
		long long k = killed_ns(), t = now_ns();
		if (t > end_of(t0, 1, STEP_MS, k)) {
			if (k)
				die("%s on %s: no completion %.0f ms after node %d was killed (deadline %lld ms)", what,
				    r->name, (t - k) / 1e6, V, deadline_ns / 1000000);
			die("%s on %s: no completion, and node %d not killed, within %d ms", what, r->name, V,
			    PREKILL_MAX_MS);
		}
		usleep(2000);
	}
}

static void expect_status(struct req *r, const char *what, int want)
{
	if (r->lksb.sb_status != want)
		die("%s on %s: status %d (%s), expected %d", what, r->name, r->lksb.sb_status,
		    strerror(r->lksb.sb_status), want);
}

/* Lock and wait at most ms (no recovery involved), status 0 required. */
static void lock_within(dlm_lshandle_t ls, struct req *r, int mode, int flags, const char *name, int ms)
{
	char what[64];
	snprintf(what, sizeof what, "%s%s%s", flags & LKF_CONVERT ? "convert to " : "", mname(mode),
		 flags & LKF_VALBLK ? "+VALBLK" : "");
	submit(ls, r, mode, flags, name);
	wait_local(r, what, ms);
	expect_status(r, what, 0);
}

static void lock_now(dlm_lshandle_t ls, struct req *r, int mode, int flags, const char *name)
{
	lock_within(ls, r, mode, flags, name, 10000);
}

static void unlock_now(dlm_lshandle_t ls, struct req *r, int recovery)
{
	submit_unlock(ls, r);
	if (recovery) wait_recovery(r, "unlock", 0);
	else wait_local(r, "unlock", STEP_MS);
	expect_status(r, "unlock", EUNLOCK);
}

static void await_kill(void)
{
	long long end = now_ns() + PREKILL_MAX_MS * 1000000LL;
	while (!killed_ns()) {
		if (now_ns() > end) die("node %d was not killed within %d ms", V, PREKILL_MAX_MS);
		usleep(10000);
	}
}

/* Waits for a mark another survivor sets once the recovery is done: at most
 * until RECOVERY_DEADLINE_MS + POST_MS after the kill. */
static void await_after_kill(const char *what)
{
	await_kill();
	long long end = killed_ns() + deadline_ns + POST_MS * 1000000LL;
	while (!exists(what)) {
		if (now_ns() > end) die("timed out waiting for %s (%.0f ms after the kill)", what, since_kill_ms());
		usleep(10000);
	}
}

/* ---- roles ---- */

static int role_waiters(int master, const char *tag)
{
	char lsname[64];
	snprintf(lsname, sizeof lsname, "rec-%s", tag);
	start(tag, 1);
	dlm_lshandle_t ls = join(lsname);
	struct req r = { 0 };
	if (me == V) {
		if (master != V) {
			char w[64];
			snprintf(w, sizeof w, "%s-nl", tag);
			await(w, 30);
		}
		lock_now(ls, &r, LKM_EXMODE, 0, "R");
		log_grant(&r);
		markf("%s-held", tag);
		ready(tag);
		hold_forever();
	}
	if (me == master) {
		lock_now(ls, &r, LKM_NLMODE, 0, "R");
		markf("%s-nl", tag);
	}
	char w[64];
	snprintf(w, sizeof w, "%s-held", tag);
	await(w, 30);
	submit(ls, &r, LKM_EXMODE, me == master ? LKF_CONVERT : 0, "R");
	ready(tag);
	wait_recovery(&r, me == master ? "NL->EX" : "EX", 1);
	expect_status(&r, "EX", 0);
	log_grant(&r);
	say("%s: EX on R granted %.0f ms after node %d was killed", tag, since_kill_ms(), V);
	usleep(100000);
	logev("release");
	unlock_now(ls, &r, 1);
	return 0;
}

static int role_lvbx(void)
{
	start("lvbx", 0);
	dlm_lshandle_t ls = join("rec-lvbx");
	struct req x1 = { 0 }, x2 = { 0 };
	if (me == V) {
		await("x2-nl", 30);
		lock_now(ls, &x1, LKM_EXMODE, LKF_VALBLK, "X1");
		strcpy(x1.lvb, "dead-ex"); /* never written back */
		lock_now(ls, &x2, LKM_PWMODE, LKF_VALBLK, "X2");
		strcpy(x2.lvb, "dead-pw");
		mark("x-held");
		ready("lvbx");
		hold_forever();
	}
	struct req *r = me == A ? &x1 : &x2;
	if (me == A) {
		struct req nl = { 0 };
		lock_now(ls, &nl, LKM_NLMODE, LKF_VALBLK, "X2"); /* X2 is mastered here */
		mark("x2-nl");
		await("x-held", 30);
		submit(ls, &x1, LKM_PRMODE, LKF_VALBLK, "X1");
	} else {
		await("x-held", 30);
		submit(ls, &x2, LKM_EXMODE, LKF_VALBLK, "X2");
	}
	ready("lvbx");
	char what[64];
	snprintf(what, sizeof what, me == A ? "PR+VALBLK (node %d held EX)" : "EX+VALBLK (node %d held PW)", V);
	wait_recovery(r, what, 1);
	expect_status(r, what, 0);
	if (!(r->lksb.sb_flags & DLM_SBF_VALNOTVALID))
		die("%s on %s granted without DLM_SBF_VALNOTVALID (sb_flags 0x%x, LVB \"%.32s\")", what, r->name,
		    (unsigned char)r->lksb.sb_flags, r->lvb);
	say("%s on %s: granted %.0f ms after the kill with DLM_SBF_VALNOTVALID", what, r->name, since_kill_ms());
	unlock_now(ls, r, 1);
	return 0;
}

static void check_lvb(struct req *r, const char *what, const char *want)
{
	if (r->lksb.sb_flags & DLM_SBF_VALNOTVALID)
		die("%s on %s: DLM_SBF_VALNOTVALID set (sb_flags 0x%x, LVB \"%.32s\")", what, r->name,
		    (unsigned char)r->lksb.sb_flags, r->lvb);
	if (strncmp(r->lvb, want, DLM_LVB_LEN))
		die("%s on %s: LVB \"%.32s\", expected \"%s\"", what, r->name, r->lvb, want);
}

static int role_lvbk(void)
{
	start("lvbk", 0);
	dlm_lshandle_t ls = join("rec-lvbk");
	struct req k1 = { 0 }, k2 = { 0 };
	if (me == V) {
		lock_now(ls, &k1, LKM_EXMODE, LKF_VALBLK, "K1");
		strcpy(k1.lvb, "kept-by-pr");
		lock_now(ls, &k1, LKM_PRMODE, LKF_CONVERT | LKF_VALBLK, "K1");
		lock_now(ls, &k2, LKM_EXMODE, LKF_VALBLK, "K2");
		strcpy(k2.lvb, "kept-by-nl");
		lock_now(ls, &k2, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "K2");
		mark("k-written");
		ready("lvbk");
		hold_forever();
	}
	if (me == B) {
		await("k-written", 30);
		lock_now(ls, &k1, LKM_PRMODE, LKF_VALBLK, "K1");
		check_lvb(&k1, "PR+VALBLK before the kill", "kept-by-pr");
		lock_now(ls, &k2, LKM_PRMODE, LKF_VALBLK, "K2");
		check_lvb(&k2, "PR+VALBLK before the kill", "kept-by-nl");
		ready("lvbk");
		await_after_kill("k-done-A");
		unlock_now(ls, &k1, 1);
		unlock_now(ls, &k2, 1);
		return 0;
	}
	/* A: asks only once V is dead */
	ready("lvbk");
	await_kill();
	submit(ls, &k1, LKM_PRMODE, LKF_VALBLK, "K1");
	char w1[64], w2[64];
	snprintf(w1, sizeof w1, "PR+VALBLK after the kill (node %d held PR)", V);
	snprintf(w2, sizeof w2, "PR+VALBLK after the kill (node %d held NL)", V);
	wait_recovery(&k1, w1, 0);
	expect_status(&k1, w1, 0);
	check_lvb(&k1, w1, "kept-by-pr");
	submit(ls, &k2, LKM_PRMODE, LKF_VALBLK, "K2");
	wait_recovery(&k2, w2, 0);
	expect_status(&k2, w2, 0);
	check_lvb(&k2, w2, "kept-by-nl");
	say("LVBs of K1 and K2 kept, no VALNOTVALID (%.0f ms after the kill)", since_kill_ms());
	mark("k-done-A");
	unlock_now(ls, &k1, 1);
	unlock_now(ls, &k2, 1);
	return 0;
}

static int role_surv(void)
{
	start("surv", 1);
	dlm_lshandle_t ls = join("rec-surv");
	struct req s = { 0 }, sp = { 0 };
	if (me == V) {
		lock_now(ls, &s, LKM_NLMODE, 0, "S");   /* S and SP mastered on V */
		lock_now(ls, &sp, LKM_EXMODE, 0, "SP");
		mark("s-v");
		ready("surv");
		hold_forever();
	}
	if (me == A) {
		await("s-v", 30);
		lock_now(ls, &s, LKM_EXMODE, 0, "S");
		log_grant(&s);
		mark("s-held");
		ready("surv");
		await_after_kill("s-queued");
		usleep(300000);
		if (exists("s-granted-B")) die("node %d was granted EX on S while node %d still held it", B, A);
		logev("release");
		mark("s-unlocking");
		submit_unlock(ls, &s);
		wait_recovery(&s, "unlock of the EX held across the recovery", 0);
		expect_status(&s, "unlock of the EX held across the recovery", EUNLOCK);
		mark("s-unlocked");
		say("kept EX on S across the recovery, then unlocked it (EUNLOCK)");
		return 0;
	}
	/* B */
	await("s-held", 30);
	struct req nq = { 0 };
	submit(ls, &nq, LKM_EXMODE, LKF_NOQUEUE, "S");
	wait_local(&nq, "NOQUEUE EX before the kill", 10000);
	expect_status(&nq, "NOQUEUE EX before the kill", EAGAIN);
	submit(ls, &sp, LKM_EXMODE, 0, "SP");
	ready("surv");
	wait_recovery(&sp, "EX (the recovery probe, held EX by the killed node)", 1);
	expect_status(&sp, "EX (the recovery probe)", 0);
	unlock_now(ls, &sp, 1);
	struct req nq2 = { 0 };
	submit(ls, &nq2, LKM_EXMODE, LKF_NOQUEUE, "S");
	wait_recovery(&nq2, "NOQUEUE EX after the recovery", 0);
	if (nq2.lksb.sb_status == 0) {
		log_grant(&nq2);
		die("NOQUEUE EX on S after the recovery was granted: node %d's EX was lost", A);
	}
	expect_status(&nq2, "NOQUEUE EX after the recovery", EAGAIN);
	submit(ls, &s, LKM_EXMODE, 0, "S");
	mark("s-queued");
	wait_recovery(&s, "EX queued behind the survivor's EX", 0);
	expect_status(&s, "EX queued behind the survivor's EX", 0);
	log_grant(&s);
	mark("s-granted-B");
	if (!exists("s-unlocking")) die("granted EX on S before node %d unlocked its EX", A);
	say("NOQUEUE EX got EAGAIN after the recovery; EX granted once node %d unlocked", A);
	usleep(20000);
	logev("release");
	unlock_now(ls, &s, 0);
	return 0;
}

static int role_mutex(int first, int iters, const char *lsname)
{
	start("mutex", 1);
	dlm_lshandle_t ls = join(lsname);
	struct req r = { 0 };
	srand(getpid());
	if (me == first) {
		lock_now(ls, &r, LKM_EXMODE, 0, "M");
		log_grant(&r);
		mark("m-first");
		usleep(20000);
		logev("release");
		unlock_now(ls, &r, 0);
	} else {
		await("m-first", 30);
	}
	if (me == V) {
		/* ITER rounds, and more until every survivor has done one (is
		 * looping), then keep M */
		long long end = now_ns() + 20000000000LL;
		for (int i = 0;; i++) {
			int all = i >= iters;
			for (int k = 1; k <= N && all; k++) {
				char w[64];
				snprintf(w, sizeof w, "ready-mutex-%d", k);
				if (k != V && !exists(w)) all = 0;
			}
			if (all) break;
			if (now_ns() > end) die("the survivors did not all take M within 20 s");
			lock_now(ls, &r, LKM_EXMODE, 0, "M");
			log_grant(&r);
			usleep(1000 + rand() % 3000);
			logev("release");
			unlock_now(ls, &r, 0);
			usleep(rand() % 2000);
		}
		lock_now(ls, &r, LKM_EXMODE, 0, "M");
		log_grant(&r);
		mark("m-victim-holds");
		ready("mutex");
		hold_forever();
	}
	int rounds = 0, after = 0;
	for (;;) {
		submit(ls, &r, LKM_EXMODE, 0, "M");
		if (V) wait_recovery(&r, "EX", 0);
		else wait_local(&r, "EX", 10000);
		expect_status(&r, "EX", 0);
		long long g = log_grant(&r);
		long long k = killed_ns();
		if (k && g > k) after++;
		usleep(2000 + rand() % 3000);
		logev("release");
		submit_unlock(ls, &r);
		if (V) wait_recovery(&r, "unlock", 0);
		else wait_local(&r, "unlock", STEP_MS);
		expect_status(&r, "unlock", EUNLOCK);
		if (++rounds == 1) ready("mutex");
		usleep(rand() % 2000);
		if (V == 0 && rounds >= iters) break;
		if (V && after >= 5) break;
	}
	say("%d rounds on M, %d after the kill", rounds, after);
	return 0;
}

static int role_counter_hold(void)
{
	start("ctr", 0);
	dlm_lshandle_t ls = join("rec-ctr");
	struct req r = { 0 };
	lock_now(ls, &r, LKM_NLMODE, 0, "C");
	mark("c-first");
	ready("ctr");
	hold_forever();
	return 0;
}

static int role_counter(const char *file, int inc)
{
	g_aware = 0; /* after the restart: plain bounds */
	start("ctr", 0);
	dlm_lshandle_t ls = join("rec-ctr");
	struct req r = { 0 };
	if (me != V) await("c-first", 30);
	lock_now(ls, &r, LKM_NLMODE, 0, "C");
	markf("c-ready-%d", me);
	if (me != V) ready("ctr");
	await("c-go", 50);
	for (int i = 0; i < inc; i++) {
		lock_within(ls, &r, LKM_EXMODE, LKF_CONVERT, "C", STEP_MS);
		FILE *f = fopen(file, "r+");
		if (!f) die("open %s", file);
		long v = 0;
		if (fscanf(f, "%ld", &v) != 1) v = 0;
		rewind(f);
		fprintf(f, "%ld\n", v + 1);
		if (fclose(f)) die("write %s", file);
		lock_within(ls, &r, LKM_NLMODE, LKF_CONVERT, "C", STEP_MS);
	}
	unlock_now(ls, &r, 0);
	say("did %d increments", inc);
	return 0;
}

/* ---- the killer ---- */

static int dead(pid_t p)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
	FILE *f = fopen(path, "r");
	if (!f) return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static int comm_is(pid_t p, const char *want)
{
	char path[64], buf[64] = { 0 };
	snprintf(path, sizeof path, "/proc/%d/comm", (int)p);
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return !strcmp(buf, want);
}

static int role_kill(int node, pid_t daemon)
{
	me = node;
	if (daemon <= 0 || !comm_is(daemon, "udlmd") || dead(daemon))
		die("pid %d is not a running udlmd", (int)daemon);
	pid_t pids[256];
	char logs[256][512];
	int n = 0;
	char dir[512];
	DIR *d = opendir(spath(dir, sizeof dir, "pids/%d", node));
	if (!d) die("cannot open %s", dir);
	for (struct dirent *e; (e = readdir(d)) && n < 256;) {
		if (e->d_name[0] == '.') continue;
		char p[1024];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		pids[n] = atoi(e->d_name);
		logs[n][0] = 0;
		FILE *f = fopen(p, "r");
		if (f) {
			if (fgets(logs[n], sizeof logs[n], f)) logs[n][strcspn(logs[n], "\n")] = 0;
			fclose(f);
		}
		if (pids[n] > 0) n++;
	}
	closedir(d);
	long long t0 = now_ns();
	write_ns("killing", t0);
	if (kill(daemon, SIGKILL)) die("kill udlmd %d: %s", (int)daemon, strerror(errno));
	int gone_before = 0;
	for (int i = 0; i < n; i++) {
		if (dead(pids[i]) || !comm_is(pids[i], "recover")) {
			say("program pid %d had already exited before the kill", (int)pids[i]);
			gone_before++;
			pids[i] = -pids[i];
			continue;
		}
		kill(pids[i], SIGKILL);
	}
	for (int waited = 0;; waited++) {
		int alive = !dead(daemon);
		for (int i = 0; i < n; i++) alive += pids[i] > 0 && !dead(pids[i]);
		if (!alive) break;
		if (waited > 15000) {
			char st[256] = "";
			for (int i = -1; i < n; i++) {
				pid_t p = i < 0 ? daemon : pids[i];
				if (p <= 0 || dead(p)) continue;
				char path[64], buf[512] = "";
				snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
				FILE *f = fopen(path, "r");
				if (f) {
					if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
					fclose(f);
				}
				buf[strcspn(buf, "\n")] = 0;
				snprintf(st + strlen(st), sizeof st - strlen(st), " [%.60s]", buf);
			}
			mark("kill-failed");
			die("node %d's processes still alive 15 s after SIGKILL:%s", node, st);
		}
		usleep(1000);
	}
	long long t = now_ns();
	for (int i = 0; i < n; i++) {
		if (pids[i] <= 0 || !logs[i][0]) continue;
		int fd = open(logs[i], O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (fd < 0) die("open %s", logs[i]);
		char b[128];
		int len = snprintf(b, sizeof b, "killed %lld %d %d\n", t, node, (int)pids[i]);
		if (write(fd, b, len) != len) die("write %s", logs[i]);
		close(fd);
	}
	write_ns("killed", t);
	say("killed udlmd %d and %d programs; all dead %.1f ms after the signal", (int)daemon, n - gone_before,
	    (t - t0) / 1e6);
	return gone_before ? 3 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) die("usage: recover ROLE N V [ARGS]");
	const char *role = argv[1];
	if (!strcmp(role, "kill")) {
		if (argc != 4) die("usage: recover kill NODE UDLMD_PID");
		return role_kill(atoi(argv[2]), atoi(argv[3]));
	}
	if (argc < 4) die("usage: recover ROLE N V [ARGS]");
	N = atoi(argv[2]);
	V = atoi(argv[3]);
	me = node_id();
	for (int k = 1; k <= N; k++) {
		if (k == V) continue;
		if (!A) A = k;
		else if (!B) B = k;
	}
	const char *d = getenv("RECOVERY_DEADLINE_MS");
	deadline_ns = (d ? atoll(d) : 7000) * 1000000LL;
	pthread_t wd;
	if (pthread_create(&wd, NULL, watchdog, NULL)) die("pthread_create");
	if (!strcmp(role, "waiters") && argc == 6) return role_waiters(atoi(argv[4]), argv[5]);
	if (!strcmp(role, "lvbx")) return role_lvbx();
	if (!strcmp(role, "lvbk")) return role_lvbk();
	if (!strcmp(role, "surv")) return role_surv();
	if (!strcmp(role, "mutex") && (argc == 6 || argc == 7))
		return role_mutex(atoi(argv[4]), atoi(argv[5]), argc == 7 ? argv[6] : "rec-mutex");
	if (!strcmp(role, "counter-hold")) return role_counter_hold();
	if (!strcmp(role, "counter") && argc == 6) return role_counter(argv[4], atoi(argv[5]));
	die("unknown role or wrong arguments: %s", role);
	return 2;
}
