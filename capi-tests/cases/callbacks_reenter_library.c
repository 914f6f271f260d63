// LIB: both
// Callbacks may call back into the library while dlm_dispatch is delivering:
// a BAST routine that down-converts its lock (the usual pattern) lets the
// waiter in, and an AST routine that unlocks its own lock gets the EUNLOCK AST
// later in the same dispatch loop.
#include "../common.h"

static dlm_lshandle_t g_ls;
static struct dlm_lksb g_h, g_u;
static int g_hasts, g_hbasts, g_uasts, g_ustatus[4];

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
    memset(&g_h, 0, sizeof g_h);
    memset(&g_u, 0, sizeof g_u);
    lk_init(&w, "W", 0);
    REQUIRE_OK(dlm_ls_lock(g_ls, LKM_EXMODE, &g_h, 0, "re", 2, 0, h_ast, NULL, h_bast, NULL));
    end = t_now_ms() + T_POS_MS;
    while (g_hasts < 1 && t_now_ms() < end) t_pump(20);
    REQUIRE(g_hasts == 1, "holder not granted");
    REQUIRE_OK(t_lock_nb(g_ls, &w, LKM_PRMODE, 0, "re"));
    CHECK(lk_wait(&w, T_POS_MS), "waiter not granted after the BAST handler down-converted");
    CHECK_EQ(g_hbasts, 1);
    CHECK_EQ(g_hasts, 2);
    CHECK_EQ(g_h.sb_status, 0);

    REQUIRE_OK(dlm_ls_lock(g_ls, LKM_EXMODE, &g_u, 0, "ru", 2, 0, u_ast, NULL, NULL, NULL));
    end = t_now_ms() + T_POS_MS;
    while (g_uasts < 2 && t_now_ms() < end) t_pump(20);
    CHECK_EQ(g_uasts, 2);
    CHECK_EQ(g_ustatus[0], 0);
    CHECK_EQ(g_ustatus[1], EUNLOCK);
    CHECK_EQ(t_probe(g_ls, LKM_EXMODE, 0, "ru"), 0);
    t_ls_release(g_ls);
    return t_done();
}
