/* An LVB written on node 1 is read on every other node; then node 2 writes
 * one that node 1 reads. */
#include "common.h"

int main(int argc, char **argv)
{
	int nodes = atoi(argv[1]);
	dlm_lshandle_t ls = join("lvbls");
	char lvb[DLM_LVB_LEN] = {0};
	struct dlm_lksb lksb = { .sb_lvbptr = lvb };
	if (node_id() == 1) {
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, LKF_VALBLK, "val", 3, 0, NULL, NULL, NULL) || lksb.sb_status)
			die("EX: %d", lksb.sb_status);
		strcpy(lvb, "written-on-node-1");
		if (dlm_ls_lock_wait(ls, LKM_NLMODE, &lksb, LKF_CONVERT | LKF_VALBLK, "val", 3, 0, NULL, NULL, NULL) || lksb.sb_status)
			die("EX->NL: %d", lksb.sb_status);
		say("wrote \"%s\"", "written-on-node-1");
		mark("lvb-written");
		for (int n = 2; n <= nodes; n++) {
			char w[32];
			snprintf(w, sizeof w, "lvb-read-%d", n);
			await(w, 20);
		}
		await("lvb-written-2", 20);
		memset(lvb, 0, sizeof lvb);
		if (dlm_ls_lock_wait(ls, LKM_PRMODE, &lksb, LKF_CONVERT | LKF_VALBLK, "val", 3, 0, NULL, NULL, NULL) || lksb.sb_status)
			die("NL->PR: %d", lksb.sb_status);
		if (strcmp(lvb, "written-on-node-2")) die("node 1 read \"%.32s\"", lvb);
		say("read \"%s\"", lvb);
		mark("lvb-done");
	} else {
		await("lvb-written", 20);
		if (dlm_ls_lock_wait(ls, LKM_PRMODE, &lksb, LKF_VALBLK, "val", 3, 0, NULL, NULL, NULL) || lksb.sb_status)
			die("PR: %d", lksb.sb_status);
		if (strcmp(lvb, "written-on-node-1")) die("read \"%.32s\"", lvb);
		say("read \"%s\"", lvb);
		if (dlm_ls_lock_wait(ls, LKM_NLMODE, &lksb, LKF_CONVERT | LKF_VALBLK, "val", 3, 0, NULL, NULL, NULL) || lksb.sb_status)
			die("PR->NL: %d", lksb.sb_status);
		char w[32];
		snprintf(w, sizeof w, "lvb-read-%d", node_id());
		if (node_id() == 2) {
			/* write only once every other node has read node 1's value */
			for (int n = 3; n <= nodes; n++) {
				char r[32];
				snprintf(r, sizeof r, "lvb-read-%d", n);
				await(r, 20);
			}
			if (dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, LKF_CONVERT | LKF_VALBLK, "val", 3, 0, NULL, NULL, NULL) || lksb.sb_status)
				die("NL->EX: %d", lksb.sb_status);
			strcpy(lvb, "written-on-node-2");
			if (dlm_ls_lock_wait(ls, LKM_NLMODE, &lksb, LKF_CONVERT | LKF_VALBLK, "val", 3, 0, NULL, NULL, NULL) || lksb.sb_status)
				die("EX->NL: %d", lksb.sb_status);
			mark(w);
			mark("lvb-written-2");
		} else {
			mark(w);
		}
		await("lvb-done", 30);
	}
	dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb);
	dlm_release_lockspace("lvbls", ls, 0);
	return 0;
}
