/* bench/compare's ZooKeeper lock client: the lock recipe of the ZooKeeper
 * documentation ("Recipes and Solutions", Locks), with the C client library
 * (libzookeeper_mt), one session per client process.
 *
 * Acquire NAME: create an EPHEMERAL_SEQUENTIAL node /compare/NAME/lock-;
 * get the children of /compare/NAME; if ours has the lowest sequence number
 * we hold the lock; otherwise watch (exists with a watch) the child just
 * below ours and, when it goes, look at the children again. Watching only
 * the predecessor avoids the herd effect. Release: delete our node. An
 * uncontended acquire+release is therefore three requests: create,
 * getChildren, delete (two of them writes through the leader).
 * The parent /compare/NAME is created once, before timing (prepare).
 *
 * TARGET: host:port[,host:port...] (the library's connect string).
 * Workloads: driver.h.
 */
#include "driver.h"
#include <pthread.h>
/* The synchronous calls (zoo_create, ...) exist only in the threaded
 * library, and its header declares them only with THREADED. */
#define THREADED
#include <zookeeper/zookeeper.h>

struct conn {
	zhandle_t *zh;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int connected;
	int events;   /* watch events seen (any change of the watched node) */
	char mine[256];
};

/* Session events (connected) and the predecessor watches both land here,
 * on the library's completion thread. */
static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)path;
	struct conn *c = ctx;
	pthread_mutex_lock(&c->mu);
	if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE)
		c->connected = 1;
	else if (type != ZOO_SESSION_EVENT)
		c->events++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void *z_open(const char *target, int client)
{
	(void)client;
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		die("calloc");
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	c->zh = zookeeper_init(target, watcher, 30000, NULL, c, 0);
	if (!c->zh)
		die("zookeeper_init %s", target);
	/* Wait for the session, but not for ever: a server that never answers
	 * fails the run instead of hanging it. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&c->mu);
	while (!c->connected)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT && !c->connected)
			die("zookeeper: no session with %s after 30 s", target);
	pthread_mutex_unlock(&c->mu);
	return c;
}

static void z_prepare(void *h, const char *name)
{
	struct conn *c = h;
	char path[256];
	int rc = zoo_create(c->zh, "/compare", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	if (rc != ZOK && rc != ZNODEEXISTS)
		die("zookeeper: create /compare: %s", zerror(rc));
	snprintf(path, sizeof path, "/compare/%s", name);
	rc = zoo_create(c->zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	if (rc != ZOK && rc != ZNODEEXISTS)
		die("zookeeper: create %s: %s", path, zerror(rc));
}

/* The sequence suffix of a child "lock-0000000042". */
static const char *seq_of(const char *child)
{
	const char *d = strrchr(child, '-');
	return d ? d + 1 : child;
}

static void z_lock(void *h, const char *name)
{
	struct conn *c = h;
	char dir[256], prefix[300];
	snprintf(dir, sizeof dir, "/compare/%s", name);
	snprintf(prefix, sizeof prefix, "%s/lock-", dir);
	int rc = zoo_create(c->zh, prefix, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, c->mine,
			    sizeof c->mine);
	if (rc != ZOK)
		die("zookeeper: create %s: %s", prefix, zerror(rc));
	const char *myseq = seq_of(c->mine);
	for (;;) {
		struct String_vector kids;
		rc = zoo_get_children(c->zh, dir, 0, &kids);
		if (rc != ZOK)
			die("zookeeper: getChildren %s: %s", dir, zerror(rc));
		/* The predecessor: the largest sequence number below ours
		 * (sequence numbers are zero-padded, so strcmp orders them). */
		const char *pred = NULL;
		for (int i = 0; i < kids.count; i++) {
			const char *s = seq_of(kids.data[i]);
			if (strcmp(s, myseq) < 0 && (!pred || strcmp(s, seq_of(pred)) > 0))
				pred = kids.data[i];
		}
		if (!pred) {
			deallocate_String_vector(&kids);
			return; /* lowest: ours */
		}
		char ppath[600];
		snprintf(ppath, sizeof ppath, "%s/%s", dir, pred);
		deallocate_String_vector(&kids);
		pthread_mutex_lock(&c->mu);
		int seen = c->events;
		pthread_mutex_unlock(&c->mu);
		struct Stat st;
		rc = zoo_wexists(c->zh, ppath, watcher, c, &st);
		if (rc == ZNONODE)
			continue; /* already gone: look again */
		if (rc != ZOK)
			die("zookeeper: exists %s: %s", ppath, zerror(rc));
		pthread_mutex_lock(&c->mu);
		while (c->events == seen)
			pthread_cond_wait(&c->cv, &c->mu);
		pthread_mutex_unlock(&c->mu);
	}
}

static void z_unlock(void *h)
{
	struct conn *c = h;
	int rc = zoo_delete(c->zh, c->mine, -1);
	if (rc != ZOK)
		die("zookeeper: delete %s: %s", c->mine, zerror(rc));
}

static void z_close(void *h)
{
	struct conn *c = h;
	zookeeper_close(c->zh);
	free(c);
}

int main(int argc, char **argv)
{
	static const struct backend b = { "zookeeper", z_open, z_prepare, z_lock, z_unlock, z_close };
	return driver_main(&b, argc, argv);
}
