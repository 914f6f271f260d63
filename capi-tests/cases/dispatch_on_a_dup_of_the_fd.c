// LIB: both
// Spec 2.8: the handle's descriptor is an ordinary descriptor to the
// program, and a duplicate of it (dup(2), as an event loop may keep) works
// like the original: it is readable exactly while callbacks are pending,
// and dlm_dispatch on the duplicate delivers them in order.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    int dupfd = dup(fd);
    int i;
    long long t0;
    struct lk l[3];
    static const char *tags[3] = { "D0", "D1", "D2" };

    REQUIRE(dupfd >= 0, "dup failed");
    CHECK(!wait_readable(dupfd, 0), "duplicate readable with nothing pending");
    for (i = 0; i < 3; i++) {
        char res[8];
        snprintf(res, sizeof res, "u%d", i);
        lk_init(&l[i], tags[i], 0);
        REQUIRE_OK(t_lock_nb(ls, &l[i], LKM_EXMODE, 0, res));
    }
    CHECK(wait_readable(dupfd, T_POS_MS), "duplicate not readable with callbacks pending");
    /* With a remote master the three completions may arrive apart. */
    t0 = t_now_ms();
    while (rec_count() < 3 && t_now_ms() - t0 < T_POS_MS) {
        wait_readable(dupfd, 100);
        CHECK_EQ(dlm_dispatch(dupfd), 0);
    }
    CHECK_EQ(rec_count(), 3);
    CHECK_SEQ(rec_str(), "ast:D0:0 ast:D1:0 ast:D2:0");
    CHECK(!wait_readable(dupfd, 0), "duplicate still readable after dispatching everything");
    CHECK(!wait_readable(fd, 0), "original readable after dispatching everything");

    // And the other way round: queued through the original's handle,
    // read from both, delivered once.
    REQUIRE_OK(t_unlock(ls, &l[0], 0));
    CHECK(wait_readable(fd, T_POS_MS), "original not readable with a callback pending");
    CHECK(wait_readable(dupfd, 0), "duplicate not readable with a callback pending");
    CHECK_EQ(dlm_dispatch(dupfd), 0);
    CHECK_EQ(dlm_dispatch(fd), 0);
    CHECK_EQ(rec_count(), 4);
    close(dupfd);
    t_ls_release(ls);
    return t_done();
}
