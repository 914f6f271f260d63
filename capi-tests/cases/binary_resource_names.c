// LIB: both
// Spec 2.4: resource names are byte strings of namelen bytes: names with
// embedded NUL bytes or high bytes that differ are different resources, case
// matters, and only the first namelen bytes of the buffer count.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c, d, e, f;
    static const char n1[] = { 'a', 0, 'b' }, n2[] = { 'a', 0, 'c' }, n3[] = { (char)0xff, (char)0x80, 1 };

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    lk_init(&d, "D", 0);
    lk_init(&e, "E", 0);
    lk_init(&f, "F", 0);
    REQUIRE_OK(t_lock_full(ls, &a, LKM_EXMODE, 0, n1, 3, NULL));
    REQUIRE(lk_wait(&a, T_POS_MS) && a.lksb.sb_status == 0, "A");
    REQUIRE_OK(t_lock_full(ls, &b, LKM_EXMODE, LKF_NOQUEUE, n2, 3, NULL));
    REQUIRE(lk_wait(&b, T_POS_MS), "B");
    CHECK_EQ(b.lksb.sb_status, 0);
    REQUIRE_OK(t_lock_full(ls, &c, LKM_EXMODE, LKF_NOQUEUE, n1, 3, NULL));
    REQUIRE(lk_wait(&c, T_POS_MS), "C");
    CHECK_EQ(c.lksb.sb_status, EAGAIN);
    REQUIRE_OK(t_lock_full(ls, &d, LKM_EXMODE, 0, n3, 3, NULL));
    REQUIRE(lk_wait(&d, T_POS_MS), "D");
    CHECK_EQ(d.lksb.sb_status, 0);
    /* "Res" vs "res"; "abcdef" with namelen 3 is "abc" */
    LOCK_EXPECT_NB(ls, &e, LKM_EXMODE, 0, "Res", 0);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "res"), 0);
    REQUIRE_OK(t_lock_full(ls, &f, LKM_EXMODE, 0, "abcdef", 3, NULL));
    REQUIRE(lk_wait(&f, T_POS_MS), "F");
    CHECK_EQ(f.lksb.sb_status, 0);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "abc"), EAGAIN);
    CHECK_EQ(t_probe(ls, LKM_EXMODE, 0, "abcdef"), 0);
    t_ls_release(ls);
    return t_done();
}
