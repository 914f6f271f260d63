// LIB: dlm
// Same as callbacks_reenter_library, with the callbacks running on the
// library's AST thread: a BAST routine that down-converts asynchronously and an
// AST routine that unlocks asynchronously do not deadlock the thread.
#include "../common.h"

static dlm_lshandle_t g_ls;
static struct dlm_lksb g_h, g_u;
static volatile int g_hasts, g_hbasts, g_uasts;
static volatile int g_ustatus[4];

static void h_ast(void *arg) { (void)arg; g_hasts++; }
static void h_bast(void *arg)
{
    (void)arg;
    g_hbasts++;
    if (dlm_ls_lock(g_ls, LKM_NLMODE, &g_h, LKF_CONVERT, "re", 2, 0, h_ast, NULL, h_bast, NULL) != 0)
        printf("convert inside the BAST failed: errno %d\n", errno);
}
static void u_ast(void *arg)
{
    (void)arg;
    if (g_uasts < 4) g_ustatus[g_uasts] = g_u.sb_status;
    g_uasts++;
    if (g_u.sb_status == 0 && dlm_ls_unlock(g_ls, g_u.sb_lkid, 0, &g_u, NULL) != 0)
        printf("unlock inside the AST failed: errno %d\n", errno);
}

int main(void)
{
    T_INIT();
    struct lk w;
    long long end;

    g_ls = t_ls_create();
    t_enable_wait(g_ls);
    memset(&g_h, 0, sizeof g_h);
    memset(&g_u, 0, sizeof g_u);
    lk_init(&w, "W", 0);
    REQUIRE_OK(dlm_ls_lock(g_ls, LKM_EXMODE, &g_h, 0, "re", 2, 0, h_ast, NULL, h_bast, NULL));
    end = t_now_ms() + T_POS_MS;
    while (g_hasts < 1 && t_now_ms() < end) t_sleep_ms(10);
    REQUIRE(g_hasts == 1, "holder not granted");
    REQUIRE_OK(t_lock_nb(g_ls, &w, LKM_PRMODE, 0, "re"));
    CHECK(lk_wait(&w, T_POS_MS), "waiter not granted after the BAST handler down-converted");
    end = t_now_ms() + T_POS_MS;
    while (g_hasts < 2 && t_now_ms() < end) t_sleep_ms(10);
    CHECK_EQ(g_hbasts, 1);
    CHECK_EQ(g_hasts, 2);

    REQUIRE_OK(dlm_ls_lock(g_ls, LKM_EXMODE, &g_u, 0, "ru", 2, 0, u_ast, NULL, NULL, NULL));
    end = t_now_ms() + T_POS_MS;
    while (g_uasts < 2 && t_now_ms() < end) t_sleep_ms(10);
    CHECK_EQ(g_uasts, 2);
    CHECK_EQ(g_ustatus[0], 0);
    CHECK_EQ(g_ustatus[1], EUNLOCK);
    t_ls_release(g_ls);
    return t_done();
}
