/* sqldb_fault: the test hooks of the SQL driver layer (sqldb.h): fault injection and statement tracing. */
#include <stdio.h>
#include <string.h>

#include "store/sqldb.h"

_Thread_local sqldb_fault_plan sqldb_fault;
_Thread_local sqldb_trace_fn sqldb_trace;
_Thread_local void *sqldb_trace_ctx;

bool sqldb_fault_fires(sqldb *db, const char *sql, char *err, size_t errlen)
{
    if (sqldb_fault.match && !strstr(sql, sqldb_fault.match))
        return false;
    sqldb_fault.calls++;
    if (--sqldb_fault.after > 0)
        return false;
    sqldb_fault.failed++;
    db->last_rejected = sqldb_fault.rejected;
    if (errlen)
        snprintf(err, errlen, "injected fault");
    return true;
}
