/* scheduler_fault: the fault-injection test hook of the scrape loop's system calls (scheduler.c;
 * tests/unit/test_scheduler_faults.c). scrape_loop_new creates its epoll instance, eventfd and curl multi
 * handle, scrape_loop_start its thread, and the socket callback re-arms a known socket (EPOLL_CTL_MOD),
 * through the wrappers below. While scrape_fault.after[call] > 0, each such call counts it down, and the
 * call that brings it to 0 fails the way the real call fails: epoll_create1 and eventfd return -1 with
 * errno = scrape_fault.err (EMFILE when 0), curl_multi_init returns NULL, pthread_create returns
 * scrape_fault.err (EAGAIN when 0) and starts nothing, and the MOD finds the socket gone from the epoll
 * set (the wrapper deletes it and fails with ENOENT, as when curl's socket was closed and its number
 * reused). calls[call] counts the calls seen while a plan for them is set, failed the faults fired.
 * Global, not thread-local: the MOD runs on the loop's thread. A test sets the plan before the loop
 * can make the call (before scrape_loop_new/start, or before the upsert that starts a scrape) and reads
 * the counts after a result (the callback's lock orders them). Never set by lookout: each wrapper costs
 * one branch. */
#ifndef LOOKOUT_SCRAPE_SCHEDULER_FAULT_H
#define LOOKOUT_SCRAPE_SCHEDULER_FAULT_H
#include <pthread.h>
#include <sys/epoll.h>

#include <curl/curl.h>

typedef enum scrape_fault_call {
    SCRAPE_FAULT_EPOLL,   /* epoll_create1 */
    SCRAPE_FAULT_EVENTFD, /* eventfd */
    SCRAPE_FAULT_MULTI,   /* curl_multi_init */
    SCRAPE_FAULT_THREAD,  /* pthread_create */
    SCRAPE_FAULT_MOD,     /* epoll_ctl(EPOLL_CTL_MOD) of a socket curl already told about */
    SCRAPE_FAULT_NCALLS
} scrape_fault_call;

typedef struct scrape_fault_plan {
    long after[SCRAPE_FAULT_NCALLS];
    int err;
    long calls[SCRAPE_FAULT_NCALLS], failed;
} scrape_fault_plan;
extern scrape_fault_plan scrape_fault;

int scrape_sys_epoll_create1(int flags);
int scrape_sys_eventfd(unsigned int initval, int flags);
CURLM *scrape_sys_multi_init(void);
int scrape_sys_thread_create(pthread_t *th, void *(*fn)(void *), void *arg);
int scrape_sys_epoll_mod_planned(int epfd, int fd, struct epoll_event *ev);
static inline int scrape_sys_epoll_mod(int epfd, int fd, struct epoll_event *ev)
{
    if (scrape_fault.after[SCRAPE_FAULT_MOD] > 0)
        return scrape_sys_epoll_mod_planned(epfd, fd, ev);
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, ev);
}

#endif
