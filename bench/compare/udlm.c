/* bench/compare's udlm lock client: plain libdlm calls, built against the
 * repository's include/libdlm.h and linked with udlm's libdlm.so.3. Which
 * node it talks to comes from the environment (DLM_RUN_DIR, DLM_NODEID,
 * DLM_CONF), as for any libdlm program; run.sh points it at a node that
 * masters none of the names.
 *
 * Acquire: an EX request with dlm_ls_lock, then poll on the lockspace fd
 * and dlm_dispatch until the completion AST has run; release: dlm_ls_unlock
 * the same way. No AST thread (dlm_ls_pthread_init) is used: with the
 * caller taking its own completions, a pair costs fewer thread hand-offs
 * than with dlm_ls_lock_wait. UDLM_WAIT=1 uses dlm_ls_lock_wait /
 * dlm_ls_unlock_wait with the AST thread instead, to compare.
 *
 * TARGET: the lockspace name. Workloads: driver.h.
 */
#include "driver.h"
#include <libdlm.h>
#include <poll.h>

struct conn {
	dlm_lshandle_t ls;
	int fd;
	int wait;
	struct dlm_lksb lksb;
	char name[64];
};

static void flag_ast(void *arg)
{
	*(volatile int *)arg = 1;
}

static void wait_flag(int fd, volatile int *flag)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (!*flag) {
		if (poll(&p, 1, 10000) < 0 && errno != EINTR)
			die("poll");
		if (dlm_dispatch(fd) < 0 && errno != EAGAIN)
			die("dlm_dispatch");
	}
}

static void *u_open(const char *target, int client)
{
	(void)client;
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		die("calloc");
	/* Creating an existing lockspace opens it: every client process gets
	 * its own handle. */
	c->ls = dlm_create_lockspace(target, 0600);
	if (!c->ls)
		die("dlm_create_lockspace(%s)", target);
	c->fd = dlm_ls_get_fd(c->ls);
	const char *w = getenv("UDLM_WAIT");
	c->wait = w && *w == '1';
	if (c->wait && dlm_ls_pthread_init(c->ls))
		die("dlm_ls_pthread_init");
	return c;
}

static void u_lock(void *h, const char *name)
{
	struct conn *c = h;
	snprintf(c->name, sizeof c->name, "%s", name);
	unsigned len = (unsigned)strlen(c->name);
	memset(&c->lksb, 0, sizeof c->lksb);
	if (c->wait) {
		if (dlm_ls_lock_wait(c->ls, LKM_EXMODE, &c->lksb, 0, c->name, len, 0, NULL, NULL, NULL) ||
		    c->lksb.sb_status)
			die("dlm_ls_lock_wait(%s): status %d", c->name, c->lksb.sb_status);
		return;
	}
	volatile int done = 0;
	if (dlm_ls_lock(c->ls, LKM_EXMODE, &c->lksb, 0, c->name, len, 0, flag_ast, (void *)&done, NULL, NULL))
		die("dlm_ls_lock(%s)", c->name);
	wait_flag(c->fd, &done);
	if (c->lksb.sb_status)
		die("lock %s: status %d", c->name, c->lksb.sb_status);
}

static void u_unlock(void *h)
{
	struct conn *c = h;
	if (c->wait) {
		if (dlm_ls_unlock_wait(c->ls, c->lksb.sb_lkid, 0, &c->lksb) || c->lksb.sb_status != EUNLOCK)
			die("dlm_ls_unlock_wait(%s): status %d", c->name, c->lksb.sb_status);
		return;
	}
	volatile int done = 0;
	if (dlm_ls_unlock(c->ls, c->lksb.sb_lkid, 0, &c->lksb, (void *)&done))
		die("dlm_ls_unlock(%s)", c->name);
	wait_flag(c->fd, &done);
	if (c->lksb.sb_status != EUNLOCK)
		die("unlock %s: status %d", c->name, c->lksb.sb_status);
}

static void u_close(void *h)
{
	struct conn *c = h;
	dlm_close_lockspace(c->ls);
	free(c);
}

int main(int argc, char **argv)
{
	static const struct backend b = { "udlm", u_open, NULL, u_lock, u_unlock, u_close };
	return driver_main(&b, argc, argv);
}
