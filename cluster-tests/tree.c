/* udlm's extensions across 3 nodes (include/udlm.h): a hierarchical
 * lockspace with lock timeouts. Every node holds the root "vol" in NL,
 * node 2 first, so that node 2 masters it and with it the whole tree (the
 * children node 1 asks for first, too: checked through the query).
 * Node 1 takes the child "meta" in EX and writes its LVB; nodes 2 and 3 ask
 * for the same child in PR under their own root locks and wait; node 3 also
 * asks for child "data" of node 1's EX with a 30 cs timeout and gets
 * ETIMEDOUT. Node 2 queries the child through its waiting lock and the
 * root by name: one master, every node's lock. Then node 1 converts its
 * child down, writing the LVB, and both readers are granted and read it.
 * Queries by name from a node that has never used the name: node 1 holds
 * EX on q0..q7 (it masters them); node 3 asks about each. Their directory
 * nodes are 2 (q0 q1 q5 q6), 1 (q2 q3) and 3 (q4 q7): answered through the
 * directory, by the master directly, and with node 3's own record. */
#include "common.h"
#include "../include/udlm.h"

static void on_ast(void *arg) { (void)arg; }

static void wait_status(struct dlm_lksb *l, int secs)
{
	for (int i = 0; i < secs * 100 && l->sb_status == EINPROG; i++) usleep(10000);
}

int main(void)
{
	int me = node_id();
	char lvb[DLM_LVB_LEN] = {0};
	struct dlm_lksb root = {0}, meta = {0}, data = {0}, q[8];
	char qname[8];
	struct udlm_resource_info res;
	struct udlm_lock_info locks[8], one;
	dlm_lshandle_t ls = dlm_new_lockspace("treels", 0600, UDLM_LSFL_HIERARCHY | UDLM_LSFL_TIMEOUT);
	if (!ls) die("dlm_new_lockspace: %s", strerror(errno));
	if (dlm_ls_pthread_init(ls)) die("dlm_ls_pthread_init");

	/* node 2 asks first, so that it masters the root and the tree */
	if (me != 2) await("root-2", 30);
	if (dlm_ls_lock_wait(ls, LKM_NLMODE, &root, 0, "vol", 3, 0, NULL, NULL, NULL) || root.sb_status)
		die("root NL: %d", root.sb_status);
	if (me == 2) mark("root-2");
	if (me == 1) {
		for (int i = 0; i < 8; i++) {
			memset(&q[i], 0, sizeof q[i]);
			snprintf(qname, sizeof qname, "q%d", i);
			if (dlm_ls_lock_wait(ls, LKM_EXMODE, &q[i], 0, qname, 2, 0, NULL, NULL, NULL) || q[i].sb_status)
				die("EX on %s: %d", qname, q[i].sb_status);
		}
		meta.sb_lvbptr = lvb;
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &meta, LKF_VALBLK, "meta", 4, root.sb_lkid, NULL, NULL, NULL) || meta.sb_status)
			die("child meta EX: %d", meta.sb_status);
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &data, 0, "data", 4, root.sb_lkid, NULL, NULL, NULL) || data.sb_status)
			die("child data EX: %d", data.sb_status);
		mark("tree-held");
		await("tree-queried", 30);
		await("tree-timedout", 30);
		strcpy(lvb, "tree-lvb-42");
		if (dlm_ls_lock_wait(ls, LKM_NLMODE, &meta, LKF_CONVERT | LKF_VALBLK, "meta", 4, 0, NULL, NULL, NULL) || meta.sb_status)
			die("child meta down to NL: %d", meta.sb_status);
		say("child written and converted down");
		await("tree-read-2", 30);
		await("tree-read-3", 30);
		await("tree-named-3", 30);
		for (int i = 0; i < 8; i++) dlm_ls_unlock_wait(ls, q[i].sb_lkid, 0, &q[i]);
		dlm_ls_unlock_wait(ls, data.sb_lkid, 0, &data);
		dlm_ls_unlock_wait(ls, meta.sb_lkid, 0, &meta);
	} else {
		await("tree-held", 30);
		meta.sb_lvbptr = lvb;
		if (dlm_ls_lock(ls, LKM_PRMODE, &meta, LKF_VALBLK, "meta", 4, root.sb_lkid, on_ast, NULL, NULL, NULL))
			die("child meta PR request");
		usleep(300000);
		if (meta.sb_status != EINPROG) die("child meta PR not waiting: %d", meta.sb_status);
		if (me == 3) {
			uint64_t cs = 30, xid = 0;
			if (dlm_ls_lockx(ls, LKM_EXMODE, &data, LKF_TIMEOUT, "data", 4, root.sb_lkid, on_ast, NULL, NULL, &xid, &cs))
				die("child data request");
			wait_status(&data, 10);
			if (data.sb_status != ETIMEDOUT) die("child data ended with %d, expected ETIMEDOUT", data.sb_status);
			say("request inside the tree timed out after 30 cs");
			for (int i = 0; i < 8; i++) {
				snprintf(qname, sizeof qname, "q%d", i);
				int k = udlm_query_resource(ls, qname, 2, &res, locks, 8);
				if (k != 1 || res.nlocks != 1 || res.master_nodeid != 1 || locks[0].nodeid != 1 ||
				    locks[0].grmode != LKM_EXMODE || locks[0].queue != UDLM_QUEUE_GRANTED)
					die("query of %s from node 3: %d entries, %u locks, master %u, node %u mode %d",
					    qname, k, res.nlocks, res.master_nodeid, locks[0].nodeid, locks[0].grmode);
			}
			if (udlm_query_resource(ls, "nobody", 6, &res, locks, 8) != -1 || errno != ENOENT)
				die("query of a name nobody locks: expected ENOENT, got %s", strerror(errno));
			say("queried q0..q7 (mastered by node 1) by name, and an unused name: ENOENT");
			mark("tree-named-3");
			await("tree-queried", 30);
			mark("tree-timedout");
		}
		if (me == 2) {
			/* the root, by name: every node's NL lock, one master */
			usleep(300000);
			int n = udlm_query_resource(ls, "vol", 3, &res, locks, 8);
			if (n != 3 || res.nlocks != 3) die("root query: %d entries, %u locks", n, res.nlocks);
			for (int i = 0; i < n; i++)
				if (locks[i].grmode != LKM_NLMODE || locks[i].queue != UDLM_QUEUE_GRANTED)
					die("root lock %d: mode %d queue %d", i, locks[i].grmode, locks[i].queue);
			uint32_t root_master = res.master_nodeid;
			/* the child, through this node's waiting lock */
			if (udlm_query_lock(ls, meta.sb_lkid, &res, &one)) die("child query: %s", strerror(errno));
			if (one.nodeid != 2 || one.queue != UDLM_QUEUE_WAIT || one.rqmode != LKM_PRMODE)
				die("child query: node %u queue %d rqmode %d", one.nodeid, one.queue, one.rqmode);
			if (res.nlocks < 2) die("child query: %u locks", res.nlocks);
			if (root_master != 2 || res.master_nodeid != root_master)
				die("tree not mastered at its root: root by node %u, child (first asked by node 1) by node %u",
				    root_master, res.master_nodeid);
			say("queried: root mastered by node %u, child by node %u with %u locks", root_master,
			    res.master_nodeid, res.nlocks);
			mark("tree-queried");
		}
		wait_status(&meta, 30);
		if (meta.sb_status) die("child meta PR: %d", meta.sb_status);
		if (strcmp(lvb, "tree-lvb-42")) die("child LVB read '%s'", lvb);
		say("child granted in PR, LVB '%s'", lvb);
		mark(me == 2 ? "tree-read-2" : "tree-read-3");
		dlm_ls_unlock_wait(ls, meta.sb_lkid, 0, &meta);
	}
	mark(me == 1 ? "tree-done-1" : me == 2 ? "tree-done-2" : "tree-done-3");
	await("tree-done-1", 30);
	await("tree-done-2", 30);
	await("tree-done-3", 30);
	dlm_ls_unlock_wait(ls, root.sb_lkid, 0, &root);
	dlm_release_lockspace("treels", ls, 1);
	return 0;
}
