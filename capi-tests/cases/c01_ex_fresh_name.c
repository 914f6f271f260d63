// LIB: both
// Spec 11.1: an EX request on a fresh name with no contention: dlm_ls_lock
// returns 0 with sb_lkid already != 0 and sb_status EINPROG; the fd becomes
// readable; dispatch delivers one AST with status 0 and sb_flags 0 to the same
// lock id; afterwards the fd is no longer readable.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a;
    uint32_t id;

    lk_init(&a, "A", 0);
    REQUIRE(fd >= 0, "dlm_ls_get_fd -> %d", fd);
    CHECK(!wait_readable(fd, 0), "fd readable before any request");

    a.lksb.sb_status = 12345;
    a.lksb.sb_flags = 0x7f;
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, 0, "fresh-name"));
    id = a.lksb.sb_lkid;
    CHECK(id != 0, "sb_lkid is 0 right after dlm_ls_lock returned");
    CHECK_EQ(a.lksb.sb_status, EINPROG);
    CHECK_EQ(rec_count(), 0);

    CHECK(wait_readable(fd, T_POS_MS), "fd did not become readable after the request");
    CHECK_EQ(dispatch_all(fd), 0);
    rec_wait(1, T_POS_MS);
    CHECK_SEQ(rec_str(), "ast:A:0");
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK_EQ(a.lksb.sb_lkid, id);
    CHECK_EQ((unsigned char)a.lksb.sb_flags, 0);
    settle(50);
    CHECK(!wait_readable(fd, 0), "fd still readable after everything was dispatched");

    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK_EQ(a.lksb.sb_lkid, id);
    t_ls_release(ls);
    return t_done();
}
