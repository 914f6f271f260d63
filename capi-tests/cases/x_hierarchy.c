// LIB: both
// udlm extension (include/udlm.h): in a lockspace created with
// UDLM_LSFL_HIERARCHY a request with a parent lock id locks a resource
// inside the parent's resource: children of one parent resource are shared
// by every handle that holds a lock on the parent resource, the same child
// name under another parent (or at the top) is another resource, LVBs work
// on children, a parent with children cannot be unlocked (ENOTEMPTY), and
// the parent must be a granted lock of the same handle (EINVAL). Elsewhere
// the parent argument is ignored, as by the kernel.
#include "../common.h"
#include "../../include/udlm.h"

static int child(dlm_lshandle_t ls, struct lk *l, int mode, uint32_t flags, const char *name, uint32_t parent)
{
    if (!(flags & LKF_CONVERT)) l->lksb.sb_lkid = 0;
    l->expect = lk_asts(l) + 1;
    return dlm_ls_lock(ls, (uint32_t)mode, &l->lksb, flags, name, (unsigned)strlen(name), parent,
                       rec_ast, l, NULL, NULL);
}

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create_flags(NULL, UDLM_LSFL_HIERARCHY);
    dlm_lshandle_t h2 = t_ls_open();
    dlm_lshandle_t plain = t_ls_create_sfx("plain");
    struct lk p, c1, q, c2, p2, c3, top, w, junk, pl, pc;

    lk_init(&p, "P", 0);
    lk_init(&c1, "C1", 1);
    lk_init(&q, "Q", 0);
    lk_init(&c2, "C2", 1);
    lk_init(&p2, "P2", 0);
    lk_init(&c3, "C3", 0);
    lk_init(&top, "TOP", 0);
    lk_init(&w, "W", 0);
    lk_init(&junk, "J", 0);
    lk_init(&pl, "PL", 0);
    lk_init(&pc, "PC", 0);

    /* P holds "root"; its child "a" with an LVB */
    LOCK_EXPECT_NB(ls, &p, LKM_PRMODE, 0, "root", 0);
    CHECK_OK(child(ls, &c1, LKM_EXMODE, LKF_VALBLK, "a", p.lksb.sb_lkid));
    CHECK(lk_wait(&c1, T_POS_MS), "child not granted");
    CHECK_EQ(c1.lksb.sb_status, 0);
    memcpy(c1.lvb, "child-lvb", 10);
    CHECK_OK(child(ls, &c1, LKM_NLMODE, LKF_CONVERT | LKF_VALBLK, "a", 0));
    CHECK(lk_wait(&c1, T_POS_MS), "child conversion");
    CHECK_OK(child(ls, &c1, LKM_EXMODE, LKF_CONVERT, "a", 0));
    CHECK(lk_wait(&c1, T_POS_MS), "child conversion back");
    CHECK_EQ(c1.lksb.sb_status, 0);

    /* another handle, also under "root": the same child resource */
    LOCK_EXPECT_NB(h2, &q, LKM_PRMODE, 0, "root", 0);
    CHECK_OK(child(h2, &c2, LKM_PRMODE, LKF_VALBLK, "a", q.lksb.sb_lkid));
    settle(300);
    CHECK_EQ(lk_asts(&c2), 0);

    /* the same child name under another parent resource, and at the top:
     * other resources, granted at once */
    LOCK_EXPECT_NB(ls, &p2, LKM_EXMODE, 0, "root2", 0);
    CHECK_OK(child(ls, &c3, LKM_EXMODE, 0, "a", p2.lksb.sb_lkid));
    CHECK(lk_wait(&c3, T_POS_MS), "child of root2 not granted");
    CHECK_EQ(c3.lksb.sb_status, 0);
    LOCK_EXPECT_NB(ls, &top, LKM_EXMODE, 0, "a", 0);

    /* a parent with children cannot go */
    CHECK_FAIL(dlm_ls_unlock(ls, p.lksb.sb_lkid, 0, &p.lksb, &p), ENOTEMPTY);
    CHECK_FAIL(dlm_ls_unlock(ls, p2.lksb.sb_lkid, LKF_FORCEUNLOCK, &p2.lksb, &p2), ENOTEMPTY);

    /* bad parents: another handle's lock, an unknown id, a waiting lock */
    CHECK_FAIL(child(ls, &junk, LKM_EXMODE, 0, "b", q.lksb.sb_lkid), EINVAL);
    CHECK_FAIL(child(ls, &junk, LKM_EXMODE, 0, "b", 0x7fff0000), EINVAL);
    CHECK_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "root"));
    settle(100);
    CHECK_EQ(lk_asts(&w), 0);
    CHECK_FAIL(child(ls, &junk, LKM_EXMODE, 0, "b", w.lksb.sb_lkid), EINVAL);
    UNLOCK_EXPECT(ls, &w, LKF_CANCEL, ECANCEL);

    /* C1 lets go: C2 is granted and reads the child's LVB */
    UNLOCK_EXPECT(ls, &c1, 0, EUNLOCK);
    CHECK(lk_wait(&c2, T_POS_MS), "C2 not granted");
    CHECK_EQ(c2.lksb.sb_status, 0);
    CHECK(memcmp(c2.lvb, "child-lvb", 10) == 0, "child LVB not read back");

    /* children gone: parents go */
    UNLOCK_EXPECT(ls, &c3, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &p2, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &p, 0, EUNLOCK);
    UNLOCK_EXPECT(h2, &c2, 0, EUNLOCK);
    UNLOCK_EXPECT(h2, &q, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &top, 0, EUNLOCK);

    /* a lockspace without the flag ignores parent, as the kernel does */
    LOCK_EXPECT_NB(plain, &pl, LKM_EXMODE, 0, "x", 0);
    CHECK_OK(child(plain, &pc, LKM_EXMODE, LKF_NOQUEUE, "x", 0x12345));
    CHECK(lk_wait(&pc, T_POS_MS), "no completion in the plain lockspace");
    CHECK_EQ(pc.lksb.sb_status, EAGAIN);
    UNLOCK_EXPECT(plain, &pl, 0, EUNLOCK);
    t_ls_release_sfx(plain, "plain");

    dlm_close_lockspace(h2);
    t_forget_handle(h2);
    t_ls_release(ls);
    return t_done();
}
