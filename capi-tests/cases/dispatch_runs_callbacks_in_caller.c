// LIB: both
// Spec 2.8: dlm_dispatch runs the callbacks (AST and BAST) in the calling
// thread, with the lksb already updated when the routine runs.
#include "../common.h"

static struct dlm_lksb *g_lksb;
static int g_seen_status = -1;
static pthread_t g_thr;

static void ast(void *arg)
{
    (void)arg;
    g_seen_status = g_lksb->sb_status;
    g_thr = pthread_self();
}

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct dlm_lksb a;

    memset(&a, 0, sizeof a);
    g_lksb = &a;
    REQUIRE_OK(dlm_ls_lock(ls, LKM_EXMODE, &a, 0, "dc", 2, 0, ast, NULL, NULL, NULL));
    REQUIRE(wait_readable(fd, T_POS_MS), "no callback pending");
    CHECK_EQ(dlm_dispatch(fd), 0);
    CHECK_EQ(g_seen_status, 0);
    CHECK(pthread_equal(g_thr, pthread_self()), "AST ran on another thread");
    t_ls_release(ls);
    return t_done();
}
