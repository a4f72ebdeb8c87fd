/* test_deadline.h: the CLOCK_REALTIME instant ms milliseconds from now, for pthread_cond_timedwait in the
 * unit tests' event-driven waits (a result delivered by another thread, or a deadline that fails the test).
 * Header-only so each test binary stays one file. */
#ifndef LOOKOUT_TESTS_TEST_DEADLINE_H
#define LOOKOUT_TESTS_TEST_DEADLINE_H
#include <time.h>

static struct timespec test_deadline(int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    return dl;
}

#endif
