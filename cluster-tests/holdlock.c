/* A lock held from the shell, for membership.sh: the membership changes
 * under test happen while programs hold and wait for locks.
 *
 *   holdlock hold RES MODE MARK   request RES in MODE (ex|pr) in lockspace
 *                                 "memb", waiting as long as it takes;
 *                                 create $SYNC_DIR/granted-MARK once granted
 *                                 (and pid-MARK, holding its process id),
 *                                 hold the lock until $SYNC_DIR/release-MARK
 *                                 exists, unlock, exit 0
 *   holdlock try RES MODE         request RES with NOQUEUE: exit 0 if
 *                                 granted (then unlock), 11 if EAGAIN
 */
#include "common.h"

static int mode_of(const char *m)
{
	if (!strcmp(m, "ex")) return LKM_EXMODE;
	if (!strcmp(m, "pr")) return LKM_PRMODE;
	die("mode %s: ex or pr", m);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) die("usage: holdlock hold RES MODE MARK | holdlock try RES MODE");
	const char *res = argv[2];
	int mode = mode_of(argv[3]);
	dlm_lshandle_t ls = join("memb");
	struct dlm_lksb lksb = {0};
	if (!strcmp(argv[1], "try")) {
		int rc = dlm_ls_lock_wait(ls, mode, &lksb, LKF_NOQUEUE, res, strlen(res), 0, NULL, NULL, NULL);
		if (rc && errno != EAGAIN) die("lock %s: %s", res, strerror(errno));
		if (rc || lksb.sb_status == EAGAIN) return 11;
		if (lksb.sb_status) die("lock %s: status %d", res, lksb.sb_status);
		dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb);
		return 0;
	}
	if (argc != 5 || strcmp(argv[1], "hold")) die("usage: holdlock hold RES MODE MARK");
	char what[256];
	if (dlm_ls_lock_wait(ls, mode, &lksb, 0, res, strlen(res), 0, NULL, NULL, NULL) || lksb.sb_status)
		die("lock %s: %s / status %d", res, strerror(errno), lksb.sb_status);
	say("granted %s %s", res, argv[3]);
	/* pid-MARK first: once granted-MARK exists, the script may kill us. */
	char p[512];
	snprintf(p, sizeof p, "%s/pid-%s", getenv("SYNC_DIR"), argv[4]);
	FILE *f = fopen(p, "w");
	if (!f) die("cannot create %s", p);
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	snprintf(what, sizeof what, "granted-%s", argv[4]);
	mark(what);
	snprintf(what, sizeof what, "release-%s", argv[4]);
	await(what, 300);
	if (dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb)) die("unlock %s: %s", res, strerror(errno));
	say("released %s", res);
	return 0;
}
