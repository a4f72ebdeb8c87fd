/* workpool: a fixed set of threads running submitted jobs from a bounded queue. The HTTP server runs
 * handlers that can be slow (dumps, search, pushes waiting for the store) here, so that they never hold
 * the threads that serve everything else.
 *
 * Threading: submit from any thread; jobs run on the pool's threads. */
#ifndef LOOKOUT_HTTP_WORKPOOL_H
#define LOOKOUT_HTTP_WORKPOOL_H
#include <stdbool.h>
#include <stddef.h>

typedef struct workpool workpool;
typedef void (*workpool_fn)(void *arg);

/* threads >= 1; at most max_queued jobs wait (running ones not counted). */
workpool *workpool_new(unsigned threads, size_t max_queued);
/* Queues fn(arg). Returns false when the queue is full or the pool is stopping (nothing is queued). */
bool workpool_submit(workpool *p, workpool_fn fn, void *arg);
/* Jobs queued or running now. */
size_t workpool_pending(workpool *p);
/* Lets running jobs finish, calls cancel(arg) for every job still queued (on the calling thread) and joins
 * the threads; the pool stays allocated and workpool_submit answers false from then on (for callers that
 * may still submit until they stop themselves). NULL is a no-op; a second call does nothing. */
void workpool_stop(workpool *p, workpool_fn cancel);
/* workpool_stop, then frees. NULL is a no-op. */
void workpool_free(workpool *p, workpool_fn cancel);

#endif
