// LIB: both
// PROC: multi
// Spec 11.49 / 6.2: P1 holds PERSISTENT PR on "r" and exits -> the lock stays
// (an EX NOQUEUE by others fails). P2: LKF_ORPHAN request for "r" in EX ->
// -1/EAGAIN; in PR -> 0 with sb_lkid = the orphan's id, no AST, sb_status stays
// EINPROG; P2 can unlock it (AST EUNLOCK via the routine given at adoption);
// a further LKF_ORPHAN request -> -1/ENOENT.
#include "../common.h"

static int child(struct t_child *c, void *arg)
{
    uint32_t v;
    dlm_lshandle_t ls;
    struct lk a;
    (void)arg;
    if (!t_recv(c->c_in, &v, T_POS_MS)) return 2;
    ls = t_ls_open();
    lk_init(&a, "P1", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_PRMODE, LKF_PERSISTENT, "r", 0);
    t_send(c->c_out, a.lksb.sb_lkid);
    fflush(stdout);
    _exit(t_failures ? 1 : 0);   /* no unlock, no close */
}

int main(void)
{
    T_INIT();
    struct t_child c;
    dlm_lshandle_t ls;
    int fd;
    struct lk o, x;
    uint32_t orphan_id = 0;

    t_fork(&c, child, NULL);
    ls = t_ls_create();
    fd = dlm_ls_get_fd(ls);
    t_send(c.to_child, 1);
    REQUIRE(t_recv(c.from_child, &orphan_id, T_POS_MS), "child did not report its lock");
    REQUIRE_OK(t_wait_child(c.pid, T_POS_MS));
    CHECK(orphan_id != 0, "child's lock id is 0");

    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "r"), EAGAIN);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "r"), 0);

    /* LKF_ORPHAN in another mode than the orphan's -> EAGAIN (waits until
       the exit has reached the lock manager) */
    CHECK(t_wait_orphan(ls, "r", LKM_EXMODE, T_POS_MS), "no orphan appeared for \"r\"");
    lk_init(&x, "X", 0);
    CHECK_FAIL(t_lock(ls, &x, LKM_EXMODE, LKF_ORPHAN, "r"), EAGAIN);
    CHECK_FAIL(t_lock(ls, &x, LKM_NLMODE, LKF_ORPHAN, "r"), EAGAIN);

    lk_init(&o, "O", 0);
    CHECK_OK(t_lock(ls, &o, LKM_PRMODE, LKF_ORPHAN, "r"));
    CHECK_EQ(o.lksb.sb_lkid, orphan_id);
    CHECK(!wait_readable(fd, T_NEG_MS), "adopting an orphan produced a callback");
    CHECK_EQ(o.lksb.sb_status, EINPROG);
    CHECK_EQ(lk_asts(&o), 0);

    /* the adopted lock is ours now */
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "r"), EAGAIN);
    UNLOCK_EXPECT(ls, &o, 0, EUNLOCK);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "r"), 0);

    lk_init(&x, "X2", 0);
    CHECK_FAIL(t_lock(ls, &x, LKM_PRMODE, LKF_ORPHAN, "r"), ENOENT);
    t_ls_release(ls);
    return t_done();
}
