/* Conversion deadlock across nodes: nodes 1 and 2 hold PR; node 1 converts
 * to EX (queued); node 2 converts to EX and gets EDEADLK, keeping PR; when
 * node 2 unlocks, node 1's conversion is granted. */
#include "common.h"

static void on_ast(void *arg) { (void)arg; }

int main(void)
{
	dlm_lshandle_t ls = join("dlkls");
	struct dlm_lksb lksb = {0};
	if (dlm_ls_lock_wait(ls, LKM_PRMODE, &lksb, 0, "d", 1, 0, NULL, NULL, NULL) || lksb.sb_status)
		die("PR: %d", lksb.sb_status);
	if (node_id() == 1) {
		mark("dl-pr-1");
		await("dl-pr-2", 20);
		if (dlm_ls_lock(ls, LKM_EXMODE, &lksb, LKF_CONVERT, "d", 1, 0, on_ast, NULL, NULL, NULL)) die("convert submit");
		usleep(300000);
		if (lksb.sb_status != EINPROG) die("conversion not queued: %d", lksb.sb_status);
		mark("dl-queued");
		for (int i = 0; i < 2000 && lksb.sb_status == EINPROG; i++) usleep(10000);
		if (lksb.sb_status) die("conversion status %d", lksb.sb_status);
		say("PR->EX granted after node 2 let go");
		dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb);
	} else {
		mark("dl-pr-2");
		await("dl-queued", 20);
		dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, LKF_CONVERT, "d", 1, 0, NULL, NULL, NULL);
		if (lksb.sb_status != EDEADLK) die("second converter got %d, expected EDEADLK", lksb.sb_status);
		say("second conversion got EDEADLK");
		dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb);
	}
	dlm_release_lockspace("dlkls", ls, 0);
	return 0;
}
