/* workpool: see workpool.h. A mutex, a condition variable and a ring of jobs. */
#include "http/workpool.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/xalloc.h"

typedef struct job {
    workpool_fn fn;
    void *arg;
} job;

struct workpool {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    job *ring;
    size_t cap, head, n; /* queued jobs: ring[head .. head+n) modulo cap */
    size_t running;
    bool stopping;
    pthread_t *threads;
    unsigned n_threads;
};

static void *worker(void *arg)
{
    workpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->n && !p->stopping)
            pthread_cond_wait(&p->cond, &p->mu);
        if (p->stopping)
            break;
        job j = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->n--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        j.fn(j.arg);
        pthread_mutex_lock(&p->mu);
        p->running--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

workpool *workpool_new(unsigned threads, size_t max_queued)
{
    workpool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->cap = max_queued ? max_queued : 1;
    p->ring = xcalloc(p->cap, sizeof *p->ring);
    p->threads = xcalloc(threads ? threads : 1, sizeof *p->threads);
    for (unsigned i = 0; i < (threads ? threads : 1); i++)
        if (pthread_create(&p->threads[p->n_threads], NULL, worker, p) == 0)
            p->n_threads++;
    if (!p->n_threads)
        abort(); /* like running out of memory: no thread at all cannot serve */
    return p;
}

bool workpool_submit(workpool *p, workpool_fn fn, void *arg)
{
    pthread_mutex_lock(&p->mu);
    bool ok = !p->stopping && p->n < p->cap;
    if (ok) {
        p->ring[(p->head + p->n) % p->cap] = (job){fn, arg};
        p->n++;
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

size_t workpool_pending(workpool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->n + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void workpool_stop(workpool *p, workpool_fn cancel)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
    /* stopping: nothing is queued any more, so the ring is ours */
    for (; p->n; p->n--, p->head = (p->head + 1) % p->cap)
        if (cancel)
            cancel(p->ring[p->head].arg);
}

void workpool_free(workpool *p, workpool_fn cancel)
{
    if (!p)
        return;
    workpool_stop(p, cancel);
    free(p->threads);
    free(p->ring);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
