/* bcrypt_hash: prints the bcrypt hash ($2y$, cost 4 unless given) of a password read from argv, for the
 * tests of basic_auth_users. Uses libxcrypt like lookout does, so the tests need no Python crypt module,
 * htpasswd or mkpasswd.  Usage: bcrypt_hash PASSWORD [COST] */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bcrypt_hash PASSWORD [COST]\n");
        return 2;
    }
    unsigned long cost = argc > 2 ? strtoul(argv[2], NULL, 10) : 4;
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$2y$", cost, NULL, 0, salt, sizeof salt)) {
        perror("crypt_gensalt_rn");
        return 1;
    }
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *h = crypt_r(argv[1], salt, &cd);
    if (!h || h[0] == '*') {
        fprintf(stderr, "crypt_r failed\n");
        return 1;
    }
    printf("%s\n", h);
    return 0;
}
