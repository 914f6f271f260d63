/* The udlm demo: several processes pass an exclusive lock ("the baton")
 * around. Whoever holds it reads a counter from the lock value block,
 * adds one, and publishes the new value by converting down with LKF_VALBLK.
 * Build against libdlm.h, link with -ldlm: nothing here is udlm-specific.
 *
 * usage: baton NAME ROUNDS [PLAYERS]
 */
#include <sys/types.h>
#include <libdlm.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

/* Waits until `n` players have left a file named `what`-* in $DEMO_SYNC: the
 * value block lives only while some lock holds the resource, so players
 * start together and leave together. */
static void barrier(const char *what, const char *me, int n)
{
	const char *dir = getenv("DEMO_SYNC");
	if (!dir)
		return;
	char p[512];
	snprintf(p, sizeof p, "%s/%s-%s", dir, what, me);
	FILE *f = fopen(p, "w");
	if (f)
		fclose(f);
	for (;;) {
		int seen = 0;
		DIR *d = opendir(dir);
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (!strncmp(e->d_name, what, strlen(what)) && e->d_name[strlen(what)] == '-')
				seen++;
		if (d)
			closedir(d);
		if (seen >= n)
			return;
		usleep(10000);
	}
}

int main(int argc, char **argv)
{
	const char *me = argc > 1 ? argv[1] : "player";
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	int players = argc > 3 ? atoi(argv[3]) : 1;
	dlm_lshandle_t ls = dlm_create_lockspace("demo", 0600);
	if (!ls) {
		fprintf(stderr, "%s: cannot join lockspace \"demo\": %s\n", me, strerror(errno));
		return 1;
	}
	if (dlm_ls_pthread_init(ls)) {
		fprintf(stderr, "%s: cannot start the callback thread\n", me);
		return 1;
	}
	char lvb[DLM_LVB_LEN];
	struct dlm_lksb lksb = { .sb_lvbptr = lvb };
	/* An NL lock keeps the resource (and its value block) alive. */
	if (dlm_ls_lock_wait(ls, LKM_NLMODE, &lksb, LKF_VALBLK, "baton", 5, 0, NULL, NULL, NULL) || lksb.sb_status) {
		fprintf(stderr, "%s: NL lock failed: %d\n", me, lksb.sb_status);
		return 1;
	}
	barrier("joined", me, players);
	for (int i = 0; i < rounds; i++) {
		/* Ask for the baton; wait until whoever has it lets go. */
		dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, LKF_CONVERT | LKF_VALBLK, "baton", 5, 0, NULL, NULL, NULL);
		if (lksb.sb_status) {
			fprintf(stderr, "%s: EX failed: %d\n", me, lksb.sb_status);
			return 1;
		}
		unsigned long counter = strtoul(lvb, NULL, 10) + 1;
		printf("%-12s has the baton (lock id %u): counter %lu -> %lu\n", me, lksb.sb_lkid, counter - 1, counter);
		fflush(stdout);
		snprintf(lvb, sizeof lvb, "%lu", counter);
		usleep(20000);
		/* Hand it on: converting down to NL with VALBLK publishes the LVB. */
		dlm_ls_lock_wait(ls, LKM_NLMODE, &lksb, LKF_CONVERT | LKF_VALBLK, "baton", 5, 0, NULL, NULL, NULL);
		usleep(10000);
	}
	barrier("done", me, players);
	dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb);
	dlm_release_lockspace("demo", ls, 0);
	return 0;
}
