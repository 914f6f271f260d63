/* bench/compare's etcd lock client: etcd's v3 lock service (the one behind
 * `etcdctl lock`), reached through etcd's JSON gateway for its gRPC API
 * (HTTP/1.1 POST with a JSON body, keys in base64) over one keep-alive TCP
 * connection per client process. The gRPC API itself would need a protobuf
 * and HTTP/2 stack in C; the gateway carries the same calls.
 *
 * The recipe, as in the concurrency package's sessions: each client grants
 * itself one lease when it connects (TTL 60 s, longer than a run, so no
 * keep-alive is needed) and then, per acquisition,
 *   POST /v3/lock/lock   {"name": NAME, "lease": ID}  -> {"key": KEY}
 *   POST /v3/lock/unlock {"key": KEY}
 * Lock creates a key under NAME attached to the lease and returns once it is
 * the oldest key there (the server waits for the earlier holders' keys to
 * be deleted); unlock deletes the key. The lease is revoked at the end.
 *
 * TARGET: host:port of one member's client URL. Workloads: driver.h.
 */
#include "driver.h"
#include <sys/socket.h>

struct conn {
	int fd;
	char host[128];
	char lease[32];
	char key[256];   /* base64 of the key lock returned */
	char rbuf[16384];
	size_t have, at;
	char body[16384];
};

static void base64(const char *in, char *out, size_t cap)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		if (o + 5 > cap)
			die("base64: too long");
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
}

static int getbyte(struct conn *c)
{
	if (c->at == c->have) {
		ssize_t r;
		do
			r = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			die("etcd: connection closed");
		c->have = (size_t)r;
		c->at = 0;
	}
	return (unsigned char)c->rbuf[c->at++];
}

static void getline_crlf(struct conn *c, char *line, size_t cap)
{
	size_t n = 0;
	for (int ch; (ch = getbyte(c)) != '\n';)
		if (ch != '\r' && n + 1 < cap)
			line[n++] = (char)ch;
	line[n] = 0;
}

/* POST path with a JSON body; the response body lands in c->body. The
 * gateway answers with Content-Length or chunked; both are read. */
static void post(struct conn *c, const char *path, const char *json)
{
	char req[2048];
	int n = snprintf(req, sizeof req,
			 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 path, c->host, strlen(json), json);
	if (n <= 0 || (size_t)n >= sizeof req)
		die("etcd: request too long");
	for (int off = 0; off < n;) {
		ssize_t r = send(c->fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("etcd: send");
		off += (int)r;
	}
	char line[1024];
	getline_crlf(c, line, sizeof line);
	int status = 0;
	if (sscanf(line, "HTTP/1.%*d %d", &status) != 1)
		die("etcd: bad status line '%s'", line);
	long clen = -1;
	int chunked = 0;
	for (;;) {
		getline_crlf(c, line, sizeof line);
		if (!line[0])
			break;
		if (!strncasecmp(line, "Content-Length:", 15))
			clen = atol(line + 15);
		if (!strncasecmp(line, "Transfer-Encoding:", 18) && strstr(line, "chunked"))
			chunked = 1;
	}
	size_t b = 0;
	if (chunked) {
		for (;;) {
			getline_crlf(c, line, sizeof line);
			long sz = strtol(line, NULL, 16);
			for (long i = 0; i < sz; i++) {
				int ch = getbyte(c);
				if (b + 1 < sizeof c->body)
					c->body[b++] = (char)ch;
			}
			getline_crlf(c, line, sizeof line);
			if (sz == 0)
				break;
		}
	} else {
		for (long i = 0; i < clen; i++) {
			int ch = getbyte(c);
			if (b + 1 < sizeof c->body)
				c->body[b++] = (char)ch;
		}
	}
	c->body[b] = 0;
	if (status != 200)
		die("etcd: %s answered %d: %s", path, status, c->body);
}

/* The string value of "field":"..." in c->body (int64s come as strings). */
static void field(struct conn *c, const char *name, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":\"", name);
	const char *p = strstr(c->body, pat);
	if (!p)
		die("etcd: no %s in %s", name, c->body);
	p += strlen(pat);
	size_t n = 0;
	while (*p && *p != '"' && n + 1 < cap)
		out[n++] = *p++;
	out[n] = 0;
}

static void *e_open(const char *target, int client)
{
	(void)client;
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		die("calloc");
	snprintf(c->host, sizeof c->host, "%s", target);
	c->fd = tcp_connect(target);
	post(c, "/v3/lease/grant", "{\"TTL\":60}");
	field(c, "ID", c->lease, sizeof c->lease);
	return c;
}

static void e_lock(void *h, const char *name)
{
	struct conn *c = h;
	char b64[256], json[512];
	base64(name, b64, sizeof b64);
	snprintf(json, sizeof json, "{\"name\":\"%s\",\"lease\":\"%s\"}", b64, c->lease);
	post(c, "/v3/lock/lock", json);
	field(c, "key", c->key, sizeof c->key);
}

static void e_unlock(void *h)
{
	struct conn *c = h;
	char json[512];
	snprintf(json, sizeof json, "{\"key\":\"%s\"}", c->key);
	post(c, "/v3/lock/unlock", json);
}

static void e_close(void *h)
{
	struct conn *c = h;
	char json[128];
	snprintf(json, sizeof json, "{\"ID\":\"%s\"}", c->lease);
	post(c, "/v3/lease/revoke", json);
	close(c->fd);
	free(c);
}

int main(int argc, char **argv)
{
	static const struct backend b = { "etcd", e_open, NULL, e_lock, e_unlock, e_close };
	return driver_main(&b, argc, argv);
}
