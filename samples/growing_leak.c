/* growing_leak: a toy request server whose memory grows with every request it handles.
 * It is the program `make demo` runs. Usage: growing_leak [REQUESTS]  (default 1000).
 *
 * build_cache() allocates a 16 KiB lookup table once (calloc(256, 64)); it never grows.
 * Each request then mallocs and frees a 1 KiB work buffer (never live at exit), and leaks
 * two things: remember_session() a 48-byte session record, and log_request() a strdup of
 * "GET /item/%06d" (17 bytes). With R requests the exit snapshot holds 16,384 + 65 * R bytes
 * in 1 + 2 * R blocks; a diff between runs with R1 and R2 requests grows by 48 * (R2 - R1)
 * and 17 * (R2 - R1) bytes at the two per-request sites and by 0 at build_cache.
 *
 * The figures below are for the default 1000 requests; "per-request" lines give each site's
 * growth per request (0 = it must not grow).
 *
 * EXPECT total bytes=81384 blocks=2001
 * EXPECT site function=remember_session bytes=48000 blocks=1000
 * EXPECT site function=log_request bytes=17000 blocks=1000
 * EXPECT site function=build_cache bytes=16384 blocks=1
 * EXPECT other bytes=0 blocks=0
 * EXPECT per-request function=remember_session bytes=48 blocks=1
 * EXPECT per-request function=log_request bytes=17 blocks=1
 * EXPECT per-request function=build_cache bytes=0 blocks=0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* noipa: each site stays a real frame with its own name, whatever the optimization level. */
#define SITE __attribute__((noipa))

typedef struct session {
    struct session *next;
    unsigned long id;
    char user[32];
} session_t; /* 48 bytes on x86_64 */

static unsigned char *cache;      /* the one-time lookup table */
static session_t *sessions;       /* grows forever: nobody expires a session */
static char *volatile last_line;  /* the log keeps only a pointer to the newest line */

SITE static void build_cache(void)
{
    cache = calloc(256, 64);
    if (!cache)
        abort();
    for (int i = 0; i < 256 * 64; i++)
        cache[i] = (unsigned char)(i * 31);
}

SITE static void remember_session(unsigned long id)
{
    session_t *s = malloc(sizeof *s);
    if (!s)
        abort();
    s->id = id;
    snprintf(s->user, sizeof s->user, "user%lu", id % 97);
    s->next = sessions;
    sessions = s;
}

SITE static void log_request(unsigned long id)
{
    char line[32];
    snprintf(line, sizeof line, "GET /item/%06lu", id % 1000000);
    last_line = strdup(line); /* the previous line is dropped, never freed */
    if (!last_line)
        abort();
}

SITE static unsigned handle_request(unsigned long id)
{
    unsigned char *work = malloc(1024);
    unsigned sum = 0;
    if (!work)
        abort();
    for (int i = 0; i < 1024; i++)
        work[i] = cache[(id + (unsigned long)i) % (256 * 64)];
    for (int i = 0; i < 1024; i++)
        sum += work[i];
    free(work);
    remember_session(id);
    log_request(id);
    return sum;
}

int main(int argc, char **argv)
{
    long requests = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    unsigned checksum = 0;
    char msg[96];

    if (requests < 0)
        requests = 0;
    _Static_assert(sizeof(session_t) == 48, "figures in the comment assume 48 bytes");
    build_cache();
    for (long i = 0; i < requests; i++)
        checksum += handle_request((unsigned long)i);
    int n = snprintf(msg, sizeof msg, "growing_leak: handled %ld requests (checksum %u)\n",
                     requests, checksum);
    if (write(1, msg, (size_t)n) < 0)
        return 1;
    return 0;
}
