// LIB: both
// NEEDS: libudlm
// udlm extension (include/udlm.h): udlm_query_resource and udlm_query_lock
// report what the resource's master knows — master node, LVB and validity,
// and every lock with its queue, modes, flags, node, lock id and pid —
// checked field by field; unknown names and ids and bad arguments give the
// documented errors; an orphan is reported as one.
#include "../common.h"
#include "../../include/udlm.h"

static struct udlm_lock_info *find(struct udlm_lock_info *v, int n, uint32_t node, uint32_t lkid)
{
    for (int i = 0; i < n; i++)
        if (v[i].nodeid == node && v[i].lkid == lkid) return &v[i];
    return NULL;
}

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    dlm_lshandle_t other = t_ls_open();
    struct lk a, b, b2, c, o;
    struct udlm_resource_info res;
    struct udlm_lock_info locks[8], one, *l;
    const char *nid = getenv("DLM_NODEID");
    uint32_t me = nid ? (uint32_t)atoi(nid) : 1;
    uint32_t master = getenv("UDLM_REMOTE_MASTER") ? 2 : me;
    int n;

    /* nothing there yet */
    CHECK_FAIL(udlm_query_resource(ls, "q1", 2, &res, locks, 8), ENOENT);

    lk_init(&a, "A", 1);
    lk_init(&b, "B", 0);
    lk_init(&b2, "B2", 0);
    lk_init(&c, "C", 0);
    lk_init(&o, "O", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, LKF_VALBLK, "q1", 0);
    memcpy(a.lvb, "hello", 6);
    LOCK_EXPECT_NB(ls, &a, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "q1", 0);
    LOCK_EXPECT_NB(ls, &b, LKM_PRMODE, 0, "q1", 0);
    LOCK_EXPECT_NB(ls, &b2, LKM_PRMODE, 0, "q1", 0);
    CHECK_OK(t_lock_nb(ls, &b, LKM_EXMODE, LKF_CONVERT, "q1"));
    CHECK_OK(t_lock_nb(ls, &c, LKM_EXMODE, LKF_NOORDER, "q1"));
    settle(200);
    CHECK_EQ(lk_asts(&b), 1);
    CHECK_EQ(lk_asts(&c), 0);

    n = udlm_query_resource(ls, "q1", 2, &res, locks, 8);
    CHECK_EQ(n, 4);
    CHECK_EQ(res.nlocks, 4);
    CHECK_EQ(res.master_nodeid, master);
    CHECK_EQ(res.has_lvb, 1);
    CHECK_EQ(res.lvb_valid, 1);
    CHECK(memcmp(res.lvb, "hello", 6) == 0, "LVB is not the one written");
    l = find(locks, n, me, a.lksb.sb_lkid);
    REQUIRE(l, "A not listed");
    CHECK_EQ(l->queue, UDLM_QUEUE_GRANTED);
    CHECK_EQ(l->grmode, LKM_NLMODE);
    CHECK_EQ(l->rqmode, -1);
    CHECK_EQ(l->flags, LKF_CONVERT | LKF_VALBLK);
    CHECK_EQ(l->orphan, 0);
    CHECK_EQ(l->pid, (uint32_t)getpid());
    l = find(locks, n, me, b2.lksb.sb_lkid);
    REQUIRE(l, "B2 not listed");
    CHECK_EQ(l->queue, UDLM_QUEUE_GRANTED);
    CHECK_EQ(l->grmode, LKM_PRMODE);
    l = find(locks, n, me, b.lksb.sb_lkid);
    REQUIRE(l, "B not listed");
    CHECK_EQ(l->queue, UDLM_QUEUE_CONVERT);
    CHECK_EQ(l->grmode, LKM_PRMODE);
    CHECK_EQ(l->rqmode, LKM_EXMODE);
    CHECK_EQ(l->flags, LKF_CONVERT);
    l = find(locks, n, me, c.lksb.sb_lkid);
    REQUIRE(l, "C not listed");
    CHECK_EQ(l->queue, UDLM_QUEUE_WAIT);
    CHECK_EQ(l->grmode, -1);
    CHECK_EQ(l->rqmode, LKM_EXMODE);
    CHECK_EQ(l->flags, LKF_NOORDER);
    /* queue order: granted, then converting, then waiting */
    CHECK_EQ(locks[0].queue, UDLM_QUEUE_GRANTED);
    CHECK_EQ(locks[2].queue, UDLM_QUEUE_CONVERT);
    CHECK_EQ(locks[3].queue, UDLM_QUEUE_WAIT);

    /* fewer slots than locks: the count is still the whole */
    CHECK_EQ(udlm_query_resource(ls, "q1", 2, &res, locks, 2), 2);
    CHECK_EQ(res.nlocks, 4);
    CHECK_EQ(udlm_query_resource(ls, "q1", 2, &res, NULL, 0), 0);
    CHECK_EQ(res.nlocks, 4);

    /* one lock */
    CHECK_OK(udlm_query_lock(ls, c.lksb.sb_lkid, &res, &one));
    CHECK_EQ(one.lkid, c.lksb.sb_lkid);
    CHECK_EQ(one.nodeid, me);
    CHECK_EQ(one.queue, UDLM_QUEUE_WAIT);
    CHECK_EQ(one.rqmode, LKM_EXMODE);
    CHECK_EQ(res.nlocks, 4);
    CHECK_EQ(res.master_nodeid, master);
    /* another handle's lock is not this handle's */
    CHECK_FAIL(udlm_query_lock(other, c.lksb.sb_lkid, &res, &one), ENOENT);

    /* errors */
    CHECK_FAIL(udlm_query_lock(ls, 0x7fff0000, &res, &one), ENOENT);
    CHECK_FAIL(udlm_query_lock(ls, 0, &res, &one), EINVAL);
    CHECK_FAIL(udlm_query_lock(ls, c.lksb.sb_lkid, &res, NULL), EINVAL);
    CHECK_FAIL(udlm_query_resource(NULL, "q1", 2, &res, locks, 8), EINVAL);
    CHECK_FAIL(udlm_query_resource(ls, "q1", 2, NULL, locks, 8), EINVAL);
    CHECK_FAIL(udlm_query_resource(ls, "q1", 2, &res, NULL, 8), EINVAL);
    CHECK_FAIL(udlm_query_resource(ls, "q1", 0, &res, locks, 8), EINVAL);
    CHECK_FAIL(udlm_query_resource(ls, "q1", 65, &res, locks, 8), EINVAL);
    CHECK_FAIL(udlm_query_resource(ls, NULL, 2, &res, locks, 8), EINVAL);

    /* an orphan */
    LOCK_EXPECT_NB(other, &o, LKM_EXMODE, LKF_PERSISTENT, "q2", 0);
    t_forget_handle(other);
    CHECK_EQ(dlm_close_lockspace(other), 0);
    n = udlm_query_resource(ls, "q2", 2, &res, locks, 8);
    CHECK_EQ(n, 1);
    CHECK_EQ(locks[0].orphan, 1);
    CHECK_EQ(locks[0].grmode, LKM_EXMODE);
    CHECK_EQ(locks[0].nodeid, me);

    UNLOCK_EXPECT(ls, &c, LKF_CANCEL, ECANCEL);
    UNLOCK_EXPECT(ls, &b, LKF_CANCEL, ECANCEL);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &b2, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
