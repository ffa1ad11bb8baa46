/* test_assert.c - JM_ASSERT is on in every build and aborts with the
 * condition, file and line. */
#include <criterion/criterion.h>
#include <signal.h>
#include "jobmill/err.h"

Test(assert, holds_quietly)
{
    int x = 1;
    JM_ASSERT(x == 1);
}

Test(assert, failure_aborts, .signal = SIGABRT)
{
    int x = 1;
    JM_ASSERT(x == 2);
}
