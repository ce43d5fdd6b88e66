/* no_leak: the control. Allocates through every common entry point and frees every block
 * before it returns, so nothing is live at exit - not even a stdio buffer (it writes its one
 * line with write(2)).
 *
 * It uses malloc, calloc, realloc (grow and shrink), reallocarray, strdup, asprintf,
 * posix_memalign, aligned_alloc, a FILE from fopen/fclose, getline's buffer, and a qsort large
 * enough that glibc mallocs its scratch array; 1,000 rounds of malloc/free in between.
 *
 * EXPECT total bytes=0 blocks=0
 * EXPECT other bytes=0 blocks=0
 */
#define _GNU_SOURCE /* asprintf, reallocarray */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SITE __attribute__((noipa))

static void *volatile hold;

static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sorts 100,000 ints: above glibc's on-stack limit, so qsort mallocs (and frees) a copy. */
SITE static void sort_numbers(void)
{
    size_t n = 100000;
    int *v = malloc(n * sizeof *v);
    if (!v)
        abort();
    for (size_t i = 0; i < n; i++)
        v[i] = (int)((i * 2654435761u) % 1000003u);
    qsort(v, n, sizeof *v, compare_ints);
    free(v);
}

/* Reads this process's own status through stdio: FILE and line buffer, both released. */
SITE static void read_status(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char *line = NULL;
    size_t cap = 0;
    if (!f)
        return;
    while (getline(&line, &cap, f) > 0)
        ;
    free(line);
    fclose(f);
}

SITE static void churn(void)
{
    for (int i = 0; i < 1000; i++) {
        hold = malloc((size_t)(i % 97) * 8 + 1);
        free(hold);
    }
    char *p = calloc(10, 10);
    p = realloc(p, 10000);
    p = realloc(p, 10);
    int *a = reallocarray(NULL, 100, sizeof(int));
    a = reallocarray(a, 200, sizeof(int));
    char *s = strdup("freed again");
    char *t = NULL;
    if (asprintf(&t, "%s and %d", s, 7) < 0)
        abort();
    void *m = NULL;
    if (posix_memalign(&m, 64, 300) != 0)
        abort();
    void *al = aligned_alloc(128, 256);
    free(al);
    free(m);
    free(t);
    free(s);
    free(a);
    free(p);
}

int main(void)
{
    churn();
    sort_numbers();
    read_status();
    static const char msg[] = "no_leak: everything freed\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        return 1;
    return 0;
}
