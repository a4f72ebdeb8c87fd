/* strtab_bench: the target manager's interning pattern - N targets with 10 labels each (10 shared names,
 * 4 values shared by every target, 6 values unique to the target) interned, then released in another
 * order - for comparing string-interning tables by instruction count:
 *
 *   make build/bench/strtab_bench
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null build/bench/strtab_bench 20000
 *   (the "Collected" line is the instruction count; deterministic, unlike wall time on a shared machine)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strtab.h"

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    static const char *names[10] = {"__address__", "__scheme__", "__metrics_path__", "job", "instance",
                                    "pod", "namespace", "node", "container", "__scrape_interval__"};
    static const char *shared[4] = {"http", "/errors", "kubernetes-pods", "15s"};
    const char **held = malloc(n * 20 * sizeof *held);
    if (!held)
        return 1;
    strtab t = {0};
    char buf[64];
    size_t h = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 10; k++) {
            held[h++] = strtab_get(&t, names[k]);
            if (k < 4)
                held[h++] = strtab_get(&t, shared[k]);
            else {
                snprintf(buf, sizeof buf, "value-%d-%zu.example.svc:%zu", k, i, 8000 + i % 1000);
                held[h++] = strtab_get(&t, buf);
            }
        }
    /* release in a stride order: entries leave from all over the table */
    for (size_t s = 0; s < 7; s++)
        for (size_t i = s; i < h; i += 7)
            strtab_put(&t, held[i]);
    strtab_free(&t);
    free(held);
    printf("interned and released %zu strings\n", h);
    return 0;
}
