/* Node 1 holds EX with a blocking routine; node 2 asks for EX and waits;
 * node 1 gets the BAST and lets go; node 2 is granted. A NOQUEUE request
 * from node 2 while node 1 holds EX gets EAGAIN and sends no BAST. */
#include "common.h"

static volatile int basts;
static void on_bast(void *arg) { (void)arg; basts++; }
static void on_ast(void *arg) { (void)arg; }

int main(void)
{
	dlm_lshandle_t ls = join("bastls");
	struct dlm_lksb lksb = {0};
	if (node_id() == 1) {
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, 0, "b", 1, 0, NULL, on_bast, NULL) || lksb.sb_status)
			die("EX: %d", lksb.sb_status);
		mark("bast-held");
		await("bast-noqueue-done", 20);
		usleep(200000);
		if (basts) die("a NOQUEUE request sent a BAST");
		mark("bast-go");
		for (int i = 0; i < 2000 && !basts; i++) usleep(10000);
		if (!basts) die("no BAST within 20 s");
		say("got a BAST from node 2's request; unlocking");
		dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb);
		await("bast-granted", 20);
	} else {
		await("bast-held", 20);
		struct dlm_lksb nq = {0};
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &nq, LKF_NOQUEUE, "b", 1, 0, NULL, NULL, NULL))
			die("NOQUEUE submit");
		if (nq.sb_status != EAGAIN) die("NOQUEUE EX got %d, expected EAGAIN", nq.sb_status);
		mark("bast-noqueue-done");
		await("bast-go", 20);
		struct dlm_lksb w = {0};
		if (dlm_ls_lock(ls, LKM_EXMODE, &w, 0, "b", 1, 0, on_ast, NULL, NULL, NULL)) die("EX submit");
		for (int i = 0; i < 2000 && w.sb_status == EINPROG; i++) usleep(10000);
		if (w.sb_status) die("EX status %d", w.sb_status);
		say("granted EX after node 1 let go");
		mark("bast-granted");
		dlm_ls_unlock_wait(ls, w.sb_lkid, 0, &w);
	}
	dlm_release_lockspace("bastls", ls, 0);
	return 0;
}
