/* scheduler_fault: the fault-injection test hook of the scrape loop's set-up calls (scheduler.c;
 * tests/unit/test_scheduler_faults.c). scrape_loop_new creates its epoll instance, eventfd and curl multi
 * handle, and scrape_loop_start its thread, through the wrappers below. While scrape_fault.after[call] > 0,
 * each such call of this thread counts it down, and the call that brings it to 0 fails the way the real
 * call fails: epoll_create1 and eventfd return -1 with errno = scrape_fault.err (EMFILE when 0),
 * curl_multi_init returns NULL, pthread_create returns scrape_fault.err (EAGAIN when 0) and starts
 * nothing. calls[call] counts the calls seen, failed the faults fired. Thread-local (the loop is created
 * and started on the caller's thread), so a test's plan never hits another thread. Never set by lookout:
 * the wrappers cost one branch, and only when a loop is created or started. */
#ifndef LOOKOUT_SCRAPE_SCHEDULER_FAULT_H
#define LOOKOUT_SCRAPE_SCHEDULER_FAULT_H
#include <pthread.h>

#include <curl/curl.h>

typedef enum scrape_fault_call {
    SCRAPE_FAULT_EPOLL,   /* epoll_create1 */
    SCRAPE_FAULT_EVENTFD, /* eventfd */
    SCRAPE_FAULT_MULTI,   /* curl_multi_init */
    SCRAPE_FAULT_THREAD,  /* pthread_create */
    SCRAPE_FAULT_NCALLS
} scrape_fault_call;

typedef struct scrape_fault_plan {
    long after[SCRAPE_FAULT_NCALLS];
    int err;
    long calls[SCRAPE_FAULT_NCALLS], failed;
} scrape_fault_plan;
extern _Thread_local scrape_fault_plan scrape_fault;

int scrape_sys_epoll_create1(int flags);
int scrape_sys_eventfd(unsigned int initval, int flags);
CURLM *scrape_sys_multi_init(void);
int scrape_sys_thread_create(pthread_t *th, void *(*fn)(void *), void *arg);

#endif
