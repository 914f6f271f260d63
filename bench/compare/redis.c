/* bench/compare's Redis lock client: the single-instance recipe from the
 * Redis documentation. Acquire: SET name token NX PX ttl, retried while the
 * name is taken; release: a Lua script that deletes the key only if it still
 * holds our token (compare-and-delete, run with EVALSHA after one SCRIPT
 * LOAD per connection). It speaks RESP over a plain TCP socket with
 * TCP_NODELAY, one connection per client process, so no client library sits
 * between the loop and the server.
 *
 * TARGET: host:port. REDIS_RETRY_US (default 0): pause before retrying a
 * refused SET; 0 retries at once, the fastest the recipe can hand a lock
 * over (clients of the recipe usually wait a little, which only lowers the
 * contended figure). Workloads: driver.h.
 */
#include "driver.h"
#include <sys/socket.h>

#define TTL_MS "30000"

static const char unlock_script[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

struct conn {
	int fd;
	char buf[4096];
	size_t have, at;
	char sha[48];
	char token[64];
	char key[64];
	long seq;
	int client;
	long retry_us;
};

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("redis: send");
		p += r;
		n -= (size_t)r;
	}
}

/* One command as a RESP array of bulk strings, written in one send. */
static void command(struct conn *c, int argc, const char **argv)
{
	char out[1024];
	size_t n = (size_t)snprintf(out, sizeof out, "*%d\r\n", argc);
	for (int i = 0; i < argc; i++) {
		size_t len = strlen(argv[i]);
		if (n + len + 32 > sizeof out)
			die("redis: command too long");
		n += (size_t)snprintf(out + n, sizeof out - n, "$%zu\r\n", len);
		memcpy(out + n, argv[i], len);
		n += len;
		out[n++] = '\r';
		out[n++] = '\n';
	}
	send_all(c->fd, out, n);
}

static int getbyte(struct conn *c)
{
	if (c->at == c->have) {
		ssize_t r;
		do
			r = recv(c->fd, c->buf, sizeof c->buf, 0);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			die("redis: connection closed");
		c->have = (size_t)r;
		c->at = 0;
	}
	return (unsigned char)c->buf[c->at++];
}

/* Reads one reply line ("+OK", ":1", "$-1", "-ERR ...") into line. */
static void reply_line(struct conn *c, char *line, size_t cap)
{
	size_t n = 0;
	for (;;) {
		int ch = getbyte(c);
		if (ch == '\r') {
			if (getbyte(c) != '\n')
				die("redis: bad reply");
			break;
		}
		if (n + 1 < cap)
			line[n++] = (char)ch;
	}
	line[n] = 0;
}

/* Reads one reply; a bulk string's body goes to body (if any). Returns the
 * type byte; '$' with *len = -1 is nil. */
static int reply(struct conn *c, char *body, size_t cap, long *len)
{
	char line[512];
	reply_line(c, line, sizeof line);
	if (line[0] == '-')
		die("redis: error reply: %s", line);
	*len = atol(line + 1);
	if (line[0] == '$' && *len >= 0) {
		for (long i = 0; i < *len; i++) {
			int ch = getbyte(c);
			if (body && (size_t)i + 1 < cap)
				body[i] = (char)ch;
		}
		if (body)
			body[(size_t)*len < cap ? (size_t)*len : cap - 1] = 0;
		getbyte(c);
		getbyte(c);
	}
	return line[0];
}

static void *r_open(const char *target, int client)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		die("calloc");
	c->fd = tcp_connect(target);
	c->client = client;
	const char *r = getenv("REDIS_RETRY_US");
	c->retry_us = r ? atol(r) : 0;
	const char *argv[] = { "SCRIPT", "LOAD", unlock_script };
	command(c, 3, argv);
	long len;
	if (reply(c, c->sha, sizeof c->sha, &len) != '$' || len != 40)
		die("redis: SCRIPT LOAD");
	return c;
}

static void r_lock(void *h, const char *name)
{
	struct conn *c = h;
	/* A token no other holder can have: process, client, sequence. */
	snprintf(c->token, sizeof c->token, "%d-%d-%ld", (int)getpid(), c->client, ++c->seq);
	snprintf(c->key, sizeof c->key, "%s", name);
	const char *argv[] = { "SET", c->key, c->token, "NX", "PX", TTL_MS };
	for (;;) {
		command(c, 6, argv);
		long len;
		int t = reply(c, NULL, 0, &len);
		if (t == '+')
			return;
		if (t != '$' || len != -1)
			die("redis: SET NX: unexpected reply");
		if (c->retry_us)
			usleep((useconds_t)c->retry_us);
	}
}

static void r_unlock(void *h)
{
	struct conn *c = h;
	const char *argv[] = { "EVALSHA", c->sha, "1", c->key, c->token };
	command(c, 5, argv);
	long n;
	if (reply(c, NULL, 0, &n) != ':' || n != 1)
		die("redis: release of %s found another token (lock expired?)", c->key);
}

static void r_close(void *h)
{
	struct conn *c = h;
	close(c->fd);
	free(c);
}

int main(int argc, char **argv)
{
	static const struct backend b = { "redis", r_open, NULL, r_lock, r_unlock, r_close };
	return driver_main(&b, argc, argv);
}
