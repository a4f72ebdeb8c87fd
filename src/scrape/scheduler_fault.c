/* scheduler_fault: see scheduler_fault.h. */
#include "scrape/scheduler_fault.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

scrape_fault_plan scrape_fault;

/* true when this call of kind c is the one to fail */
static bool fires(scrape_fault_call c)
{
    if (scrape_fault.after[c] <= 0)
        return false;
    scrape_fault.calls[c]++;
    if (--scrape_fault.after[c] > 0)
        return false;
    scrape_fault.failed++;
    return true;
}

int scrape_sys_epoll_create1(int flags)
{
    if (fires(SCRAPE_FAULT_EPOLL)) {
        errno = scrape_fault.err ? scrape_fault.err : EMFILE;
        return -1;
    }
    return epoll_create1(flags);
}

int scrape_sys_eventfd(unsigned int initval, int flags)
{
    if (fires(SCRAPE_FAULT_EVENTFD)) {
        errno = scrape_fault.err ? scrape_fault.err : EMFILE;
        return -1;
    }
    return eventfd(initval, flags);
}

CURLM *scrape_sys_multi_init(void)
{
    if (fires(SCRAPE_FAULT_MULTI))
        return NULL;
    return curl_multi_init();
}

int scrape_sys_thread_create(pthread_t *th, void *(*fn)(void *), void *arg)
{
    if (fires(SCRAPE_FAULT_THREAD))
        return scrape_fault.err ? scrape_fault.err : EAGAIN;
    return pthread_create(th, NULL, fn, arg);
}

int scrape_sys_epoll_mod_planned(int epfd, int fd, struct epoll_event *ev)
{
    if (fires(SCRAPE_FAULT_MOD)) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
        errno = ENOENT;
        return -1;
    }
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, ev);
}
