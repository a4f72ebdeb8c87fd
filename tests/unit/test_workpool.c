/* workpool: jobs run on the pool's threads, the queue is bounded, queued jobs are cancelled at free. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "http/workpool.h"

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int ran, cancelled, started;

static void blocker(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    atomic_fetch_add(&ran, 1);
}

static void cancel(void *arg)
{
    (void)arg;
    atomic_fetch_add(&cancelled, 1);
}

Test(workpool, bounded_queue_and_cancel_at_free)
{
    workpool *p = workpool_new(1, 2);
    cr_assert(workpool_submit(p, blocker, NULL)); /* runs, holds the only thread */
    while (atomic_load(&started) == 0)
        usleep(1000);
    cr_assert(workpool_submit(p, blocker, NULL)); /* queued */
    cr_assert(workpool_submit(p, blocker, NULL)); /* queued: the queue is full now */
    cr_assert_not(workpool_submit(p, blocker, NULL), "a third waiting job must be refused");
    cr_assert_eq(workpool_pending(p), 3);
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_mu);
    workpool_free(p, cancel);
    /* the running job finished; the queued ones ran or were cancelled, each exactly once */
    cr_assert_eq(atomic_load(&ran) + atomic_load(&cancelled), 3);
    cr_assert_geq(atomic_load(&ran), 1);
}

static void count_ran(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
}

Test(workpool, stopped_pool_refuses_until_freed)
{
    atomic_store(&ran, 0);
    atomic_store(&cancelled, 0);
    workpool *p = workpool_new(2, 4);
    cr_assert(workpool_submit(p, count_ran, NULL));
    workpool_stop(p, cancel);
    cr_assert_eq(atomic_load(&ran) + atomic_load(&cancelled), 1);
    /* stopped, still allocated: a late submitter is refused, nothing runs or is lost */
    cr_assert_not(workpool_submit(p, count_ran, NULL));
    workpool_stop(p, cancel); /* a second stop does nothing */
    workpool_free(p, cancel);
    cr_assert_eq(atomic_load(&ran) + atomic_load(&cancelled), 1);
}
