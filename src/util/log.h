/* log: one logfmt line per event on stderr, like Prometheus:
 *   ts=2026-11-26T05:03:05.123Z level=warn component=sd/file msg="read failed" file=/x.json err="..."
 * Thread-safe (one write(2) per line). Never log secrets: callers pass only what is safe to show. */
#ifndef LOOKOUT_UTIL_LOG_H
#define LOOKOUT_UTIL_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parses "debug|info|warn|error"; returns 0 on success, -1 otherwise. */
int log_parse_level(const char *s, enum log_level *out);
/* Logs msg with extra key/value pairs: a NULL-terminated list of (const char *key, const char *value).
 * Values are quoted when needed; a NULL value is written as "". */
void log_kv(enum log_level lvl, const char *component, const char *msg, ...);

#define log_debug(comp, msg, ...) log_kv(LOG_DEBUG, comp, msg, ##__VA_ARGS__, (const char *)0)
#define log_info(comp, msg, ...) log_kv(LOG_INFO, comp, msg, ##__VA_ARGS__, (const char *)0)
#define log_warn(comp, msg, ...) log_kv(LOG_WARN, comp, msg, ##__VA_ARGS__, (const char *)0)
#define log_error(comp, msg, ...) log_kv(LOG_ERROR, comp, msg, ##__VA_ARGS__, (const char *)0)

#endif
