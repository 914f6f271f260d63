// LIB: both
// Spec 11.58 / 2.8: dlm_dispatch on an fd with nothing pending returns 0 at
// once (no blocking) and leaves the fd flags as they were; poll reports POLLIN
// exactly while callbacks are pending; one dlm_dispatch call delivers every
// pending callback.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    int fl0, fl1, i;
    long long t0;
    struct lk l[3];
    static const char *tags[3] = { "L0", "L1", "L2" };

    fl0 = fcntl(fd, F_GETFL);
    CHECK(!wait_readable(fd, 0), "fd readable with nothing pending");
    t0 = t_now_ms();
    CHECK_EQ(dlm_dispatch(fd), 0);
    CHECK(t_now_ms() - t0 < 500, "dlm_dispatch on an empty queue took %lld ms", t_now_ms() - t0);
    fl1 = fcntl(fd, F_GETFL);
    CHECK_EQ(fl1, fl0);

    for (i = 0; i < 3; i++) {
        char res[8];
        snprintf(res, sizeof res, "d%d", i);
        lk_init(&l[i], tags[i], 0);
        REQUIRE_OK(t_lock_nb(ls, &l[i], LKM_EXMODE, 0, res));
    }
    CHECK(wait_readable(fd, T_POS_MS), "fd not readable with callbacks pending");
    t_sleep_ms(T_NEG_MS);
    CHECK(wait_readable(fd, 0), "fd not readable with callbacks pending");
    CHECK_EQ(dlm_dispatch(fd), 0);
    CHECK_EQ(rec_count(), 3);
    CHECK(!wait_readable(fd, 0), "fd still readable after dispatching everything");
    CHECK_EQ(fcntl(fd, F_GETFL), fl0);
    t0 = t_now_ms();
    CHECK_EQ(dlm_dispatch(fd), 0);
    CHECK(t_now_ms() - t0 < 500, "dlm_dispatch on an empty queue took %lld ms", t_now_ms() - t0);
    CHECK_SEQ(rec_str(), "ast:L0:0 ast:L1:0 ast:L2:0");
    t_ls_release(ls);
    return t_done();
}
