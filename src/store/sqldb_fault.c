/* sqldb_fault: the fault-injection test hook of the SQL driver layer (sqldb.h). */
#include <stdio.h>
#include <string.h>

#include "store/sqldb.h"

_Thread_local sqldb_fault_plan sqldb_fault;

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
