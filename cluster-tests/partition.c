/* Helpers for the network partition test (run by partition.sh). The lock
 * programs are mostly recover.c's roles; this one keeps time, watches
 * processes and probes a cut-off node, on the same clock (CLOCK_MONOTONIC,
 * shared by every network namespace) that recover.c stamps its
 * mutual-exclusion log with.
 *
 *   partition now                 print the clock, in ns
 *   partition watch LOG NODE PID TIMEOUT_MS
 *                                 wait for process PID (a program on NODE)
 *                                 to end; then append "killed <ns> NODE PID"
 *                                 to LOG (the line mutex_check reads: the
 *                                 process holds nothing from then on) and
 *                                 print "<ns> ended"; exit 0. Exit 3,
 *                                 nothing logged, if it is still alive
 *                                 after TIMEOUT_MS; 2 on errors.
 *
 *   partition probe LS NAME MS LOG
 *                                 (on a node: DLM_RUN_DIR etc. as recover.c)
 *                                 open lockspace LS and ask EX on NAME; wait
 *                                 at most MS in all. Granted: log "grant" and
 *                                 "release" lines to LOG as recover.c does,
 *                                 unlock, print "granted after N ms", exit 0.
 *                                 Completed otherwise: print "status N",
 *                                 exit 4. Nothing within MS (blocked in the
 *                                 open or the request): print where, exit 5.
 *
 * The death is noticed through a pidfd (poll wakes as the process exits),
 * or, on a kernel without pidfd_open, by polling /proc every millisecond.
 * Either way the logged time is at or just after the death: it can only
 * make an overlap appear, never hide one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/types.h>
#include <libdlm.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Gone or a zombie. */
static int dead(int pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f) return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static int watch(const char *log, int node, int pid, long timeout_ms)
{
	long long end = now_ns() + timeout_ms * 1000000LL;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0 && errno == ESRCH) {
		fprintf(stderr, "partition watch: pid %d does not exist\n", pid);
		return 2;
	}
	for (;;) {
		if (dead(pid)) break;
		long long left = end - now_ns();
		if (left <= 0) {
			printf("alive after %ld ms\n", timeout_ms);
			return 3;
		}
		if (fd >= 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int ms = (int)(left / 1000000) + 1;
			if (poll(&p, 1, ms > 100 ? 100 : ms) > 0) break;
		} else {
			usleep(1000);
		}
	}
	long long t = now_ns();
	int lf = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (lf < 0) {
		fprintf(stderr, "partition watch: cannot open %s: %s\n", log, strerror(errno));
		return 2;
	}
	char b[128];
	int len = snprintf(b, sizeof b, "killed %lld %d %d\n", t, node, pid);
	if (write(lf, b, len) != len) {
		fprintf(stderr, "partition watch: cannot write %s\n", log);
		return 2;
	}
	close(lf);
	printf("%lld ended\n", t);
	return 0;
}

/* ---- probe ---- */

static const char *p_ls, *p_name, *p_logpath;
static const char *volatile p_where = "starting";
static int p_done, p_failed;
static long long p_t0, p_t_ast;
static struct dlm_lksb p_lksb;

static void p_ast(void *arg)
{
	(void)arg;
	p_t_ast = now_ns();
	__atomic_store_n(&p_done, 1, __ATOMIC_RELEASE);
}

static void p_log(const char *what, long long t)
{
	int fd = open(p_logpath, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return;
	char b[128];
	const char *node = getenv("DLM_NODEID");
	int n = snprintf(b, sizeof b, "%s %lld %d %d\n", what, t, node ? atoi(node) : 0, (int)getpid());
	if (write(fd, b, n) != n) fprintf(stderr, "probe: log write failed\n");
	close(fd);
}

/* The library calls, in their own thread: dlm_create_lockspace may itself
 * wait (a node that has not joined), and the main thread keeps the bound. */
static void *p_run(void *arg)
{
	(void)arg;
	p_where = "blocked in dlm_create_lockspace";
	dlm_lshandle_t ls = dlm_create_lockspace(p_ls, 0600);
	if (!ls) {
		printf("dlm_create_lockspace(%s): %s\n", p_ls, strerror(errno));
		__atomic_store_n(&p_failed, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	if (dlm_ls_pthread_init(ls)) {
		printf("dlm_ls_pthread_init failed\n");
		__atomic_store_n(&p_failed, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	p_where = "blocked in dlm_ls_lock";
	if (dlm_ls_lock(ls, LKM_EXMODE, &p_lksb, 0, p_name, strlen(p_name), 0, p_ast, NULL, NULL, NULL)) {
		printf("dlm_ls_lock(EX %s): %s\n", p_name, strerror(errno));
		__atomic_store_n(&p_failed, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	p_where = "the EX request is waiting";
	while (!__atomic_load_n(&p_done, __ATOMIC_ACQUIRE)) usleep(1000);
	if (p_lksb.sb_status == 0) {
		p_log("grant", p_t_ast);
		printf("granted after %.0f ms\n", (p_t_ast - p_t0) / 1e6);
		usleep(1000);
		p_log("release", now_ns());
		dlm_ls_unlock(ls, p_lksb.sb_lkid, 0, &p_lksb, NULL);
		usleep(50000);
		exit(0);
	}
	printf("status %d (%s) after %.0f ms\n", p_lksb.sb_status, strerror(p_lksb.sb_status), (p_t_ast - p_t0) / 1e6);
	exit(4);
}

static int probe(const char *lsname, const char *name, long ms, const char *log)
{
	p_ls = lsname;
	p_name = name;
	p_logpath = log;
	p_t0 = now_ns();
	long long end = p_t0 + ms * 1000000LL;
	pthread_t th;
	if (pthread_create(&th, NULL, p_run, NULL)) return 2;
	while (now_ns() < end) {
		if (__atomic_load_n(&p_failed, __ATOMIC_ACQUIRE)) _exit(4);
		usleep(2000);
	}
	/* a grant that came at the last moment: its thread exits 0 */
	if (__atomic_load_n(&p_done, __ATOMIC_ACQUIRE)) pause();
	printf("no answer within %ld ms (%s)\n", ms, p_where);
	fflush(stdout);
	_exit(5);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "now")) {
		printf("%lld\n", now_ns());
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "watch"))
		return watch(argv[2], atoi(argv[3]), atoi(argv[4]), atol(argv[5]));
	if (argc == 6 && !strcmp(argv[1], "probe")) return probe(argv[2], argv[3], atol(argv[4]), argv[5]);
	fprintf(stderr, "usage: partition now | partition watch LOG NODE PID TIMEOUT_MS | partition probe LS NAME MS LOG\n");
	return 2;
}
