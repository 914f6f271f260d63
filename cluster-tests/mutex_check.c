/* Mutual-exclusion checker for the recovery tests.
 *
 * Reads a log written by every holder of one EX lock, one line per event:
 *   grant   <CLOCK_MONOTONIC ns> <node> <pid>   right after the grant
 *   release <ns> <node> <pid>                   right before the unlock
 *   killed  <ns> <node> <pid>                   written by the test once the
 *                                               process (and its node) is dead
 * A holder's interval runs from its grant to its release or its killed line.
 * Fails if two holders' intervals overlap. Lines are sorted by time first
 * (several writers: the order in the file is not the order of the clocks);
 * at equal times an end sorts before a grant.
 *
 * usage: mutex_check LOG        exit 0: no overlap; 1: overlap or an
 *                               inconsistent log; 2: unreadable/malformed
 * Prints one summary line (or the first problem found) on stdout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { GRANT, RELEASE, KILLED };

struct ev {
	enum kind kind;
	long long ns;
	long node, pid;
	long line;
};

static int cmp(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;
	if (x->ns != y->ns) return x->ns < y->ns ? -1 : 1;
	int xe = x->kind != GRANT, ye = y->kind != GRANT; /* ends first */
	if (xe != ye) return ye - xe;
	return x->line < y->line ? -1 : x->line > y->line;
}

struct holder {
	long node, pid;
	long long since;
	long line;
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s LOG\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		printf("mutex_check: cannot open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	size_t n = 0, cap = 1024;
	struct ev *evs = malloc(cap * sizeof *evs);
	char buf[256];
	long line = 0;
	while (fgets(buf, sizeof buf, f)) {
		line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			printf("mutex_check: %s:%ld: line too long\n", argv[1], line);
			return 2;
		}
		char word[16], extra[2];
		long long ns;
		long node, pid;
		if (buf[0] == '\n') continue;
		if (sscanf(buf, "%15s %lld %ld %ld %1s", word, &ns, &node, &pid, extra) != 4 || ns < 0) {
			printf("mutex_check: %s:%ld: malformed line: %s", argv[1], line, buf);
			return 2;
		}
		struct ev e = { .ns = ns, .node = node, .pid = pid, .line = line };
		if (!strcmp(word, "grant")) e.kind = GRANT;
		else if (!strcmp(word, "release")) e.kind = RELEASE;
		else if (!strcmp(word, "killed")) e.kind = KILLED;
		else {
			printf("mutex_check: %s:%ld: unknown event '%s'\n", argv[1], line, word);
			return 2;
		}
		if (n == cap) evs = realloc(evs, (cap *= 2) * sizeof *evs);
		evs[n++] = e;
	}
	fclose(f);
	qsort(evs, n, sizeof *evs, cmp);

	/* The holders whose interval is open; more than one at a time is the
	 * failure, so this stays tiny, but keep them all to report them. */
	struct holder open[64];
	int nopen = 0;
	long grants = 0, kills = 0, holders_killed = 0;
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		struct ev *e = &evs[i];
		int at = -1;
		for (int j = 0; j < nopen; j++)
			if (open[j].node == e->node && open[j].pid == e->pid) at = j;
		switch (e->kind) {
		case GRANT:
			grants++;
			if (at >= 0) {
				printf("mutex_check: line %ld: node %ld pid %ld granted again at %lld without a release since line %ld\n",
				       e->line, e->node, e->pid, e->ns, open[at].line);
				bad = 1;
				break;
			}
			for (int j = 0; j < nopen && !bad; j++) {
				printf("mutex_check: OVERLAP: node %ld pid %ld granted at %lld (line %ld) while node %ld pid %ld "
				       "held it since %lld (line %ld), %.3f ms earlier\n",
				       e->node, e->pid, e->ns, e->line, open[j].node, open[j].pid, open[j].since,
				       open[j].line, (e->ns - open[j].since) / 1e6);
				bad = 1;
			}
			if (nopen < 64) open[nopen++] = (struct holder){ e->node, e->pid, e->ns, e->line };
			break;
		case RELEASE:
			if (at < 0) {
				printf("mutex_check: line %ld: release by node %ld pid %ld at %lld, which held nothing\n",
				       e->line, e->node, e->pid, e->ns);
				bad = 1;
				break;
			}
			open[at] = open[--nopen];
			break;
		case KILLED:
			kills++;
			if (at >= 0) {
				holders_killed++;
				open[at] = open[--nopen];
			}
			break;
		}
		if (bad) break;
	}
	free(evs);
	if (bad) return 1;
	printf("mutex_check: %ld grants, %ld kills (%ld of a holder), no overlap\n", grants, kills, holders_killed);
	return 0;
}
