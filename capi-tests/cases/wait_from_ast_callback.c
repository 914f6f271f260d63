// LIB: dlm
// Spec 2.6: a _wait call made from inside a callback on the library's AST
// thread dispatches inline and returns 0 with the final status (lock and
// unlock), instead of deadlocking.
#include "../common.h"

static dlm_lshandle_t g_ls;
static volatile int g_done;
static int g_rv1, g_st1, g_rv2, g_st2;
static uint32_t g_id;

static void cb(void *arg)
{
    struct dlm_lksb b;
    (void)arg;
    memset(&b, 0, sizeof b);
    g_rv1 = dlm_ls_lock_wait(g_ls, LKM_EXMODE, &b, 0, "inner", 5, 0, NULL, NULL, NULL);
    g_st1 = b.sb_status;
    g_id = b.sb_lkid;
    g_rv2 = dlm_ls_unlock_wait(g_ls, b.sb_lkid, 0, &b);
    g_st2 = b.sb_status;
    g_done = 1;
}

int main(void)
{
    T_INIT();
    struct dlm_lksb a;
    long long end;

    g_ls = t_ls_create();
    t_enable_wait(g_ls);
    memset(&a, 0, sizeof a);
    REQUIRE_OK(dlm_ls_lock(g_ls, LKM_EXMODE, &a, 0, "outer", 5, 0, cb, NULL, NULL, NULL));
    end = t_now_ms() + T_POS_MS;
    while (!g_done && t_now_ms() < end) t_sleep_ms(10);
    REQUIRE(g_done, "the callback did not finish (a _wait call inside it hangs?)");
    CHECK_EQ(g_rv1, 0);
    CHECK_EQ(g_st1, 0);
    CHECK(g_id != 0, "no lock id");
    CHECK_EQ(g_rv2, 0);
    CHECK_EQ(g_st2, EUNLOCK);
    CHECK_EQ(a.sb_status, 0);
    t_ls_release(g_ls);
    return t_done();
}
