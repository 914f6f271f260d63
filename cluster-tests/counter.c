/* N increments of a counter kept in a file, each under an EX lock: with
 * several nodes doing this at once the file must end at exactly nodes * N. */
#include "common.h"

int main(int argc, char **argv)
{
	const char *file = argv[1];
	int n = atoi(argv[2]);
	dlm_lshandle_t ls = join("counter");
	struct dlm_lksb lksb = {0};
	for (int i = 0; i < n; i++) {
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, 0, "counter", 7, 0, NULL, NULL, NULL) || lksb.sb_status)
			die("EX lock: status %d errno %d", lksb.sb_status, errno);
		FILE *f = fopen(file, "r+");
		if (!f) die("open %s", file);
		long v = 0;
		if (fscanf(f, "%ld", &v) != 1) v = 0;
		rewind(f);
		fprintf(f, "%ld\n", v + 1);
		fflush(f);
		fsync(fileno(f));
		fclose(f);
		if (dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb) || lksb.sb_status != EUNLOCK)
			die("unlock: status %d", lksb.sb_status);
	}
	say("did %d increments", n);
	dlm_release_lockspace("counter", ls, 0);
	return 0;
}
