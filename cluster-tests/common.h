/* Helpers for the multi-node scenarios: every program runs on one node of a
 * udlm cluster (its DLM_RUN_DIR / DLM_NODEID say which) and synchronises
 * with its peers on other nodes through files in a shared directory. */
#include <sys/types.h>
#include <libdlm.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__attribute__((unused)) static int node_id(void) { const char *s = getenv("DLM_NODEID"); return s ? atoi(s) : 1; }

__attribute__((unused)) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[node %d] FAIL: ", node_id());
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

__attribute__((unused)) static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("[node %d] ", node_id());
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

/* Barrier files in the shared directory $SYNC_DIR. */
__attribute__((unused)) static void mark(const char *what)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", getenv("SYNC_DIR"), what);
	FILE *f = fopen(p, "w");
	if (!f) die("cannot create %s", p);
	fclose(f);
}

__attribute__((unused)) static void await(const char *what, int seconds)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", getenv("SYNC_DIR"), what);
	for (int i = 0; i < seconds * 100; i++) {
		if (access(p, F_OK) == 0) return;
		usleep(10000);
	}
	die("timed out waiting for %s", what);
}

__attribute__((unused)) static dlm_lshandle_t join(const char *name)
{
	dlm_lshandle_t ls = dlm_create_lockspace(name, 0600);
	if (!ls) die("dlm_create_lockspace(%s): %s", name, strerror(errno));
	if (dlm_ls_pthread_init(ls)) die("dlm_ls_pthread_init failed");
	return ls;
}
