// LIB: both
// Spec 11.3: namelen 65 on a new request -> -1/EINVAL (checked by the library
// before anything is sent: sb_status is left untouched, oracle 01);
// namelen 64 -> success with AST 0.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    char name[80];
    struct lk a, b;

    memset(name, 'n', sizeof name);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);

    a.lksb.sb_status = 0;
    CHECK_FAIL(dlm_ls_lock(ls, LKM_EXMODE, &a.lksb, 0, name, 65, 0, rec_ast, &a, NULL, NULL), EINVAL);
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK_FAIL(dlm_ls_lock(ls, LKM_EXMODE, &a.lksb, 0, name, 1000, 0, rec_ast, &a, NULL, NULL), EINVAL);
    CHECK(!wait_readable(fd, T_NEG_MS), "AST queued for a rejected request");

    REQUIRE_OK(t_lock_full(ls, &b, LKM_EXMODE, 0, name, 64, NULL));
    CHECK(b.lksb.sb_lkid != 0, "no lock id");
    CHECK(lk_wait(&b, T_POS_MS), "no AST for the 64-byte name");
    CHECK_EQ(b.lksb.sb_status, 0);

    /* the 64-byte name is a real resource: a NOQUEUE request on it fails */
    {
        struct lk c;
        lk_init(&c, "C", 0);
        REQUIRE_OK(t_lock_full(ls, &c, LKM_EXMODE, LKF_NOQUEUE, name, 64, NULL));
        CHECK(lk_wait(&c, T_POS_MS), "no AST");
        CHECK_EQ(c.lksb.sb_status, EAGAIN);
    }
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
