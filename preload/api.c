/*
 * api - the program API (include/leakdiff.h), exported by the shim.
 *
 * The header's inline wrappers find these by name with dlsym, and so does Python's ctypes
 * (ctypes.CDLL(None).leakdiff_snapshot). They run in the program's own threads, outside
 * any hook; each sets the guard while it works.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "track.h"

#define API __attribute__((visibility("default")))

/* The definitions behind include/leakdiff.h, whose wrappers of the same names are static
 * inline (and so cannot be included here). */
API int leakdiff_snapshot(const char *label);
API int leakdiff_start(void);
API int leakdiff_stop(void);
API int leakdiff_is_tracing(void);
API int leakdiff_traced_memory(size_t *current, size_t *peak);
API int leakdiff_reset_peak(void);

/* Common gate: the tracker must be initialised (it is, once anything allocated). */
static bool ready(void)
{
    int st = atomic_load(&lkd_state);
    return st == LKD_ST_READY || (st == LKD_ST_UNINIT && lkd_track_init());
}

/* leakdiff_snapshot - writes <exe>.<pid>.<seq>.<label>.snap now; 0 or -errno. */
API int leakdiff_snapshot(const char *label)
{
    if (!ready())
        return -ENOSYS;
    return lkd_track_snapshot(label && *label ? label : "snapshot", 0);
}

/* leakdiff_start - records new allocations from now on; 0. */
API int leakdiff_start(void)
{
    if (!ready())
        return -ENOSYS;
    lkd_track_set_recording(true);
    return 0;
}

/* leakdiff_stop - stops recording new allocations; frees are still processed; 0. */
API int leakdiff_stop(void)
{
    if (!ready())
        return -ENOSYS;
    lkd_track_set_recording(false);
    return 0;
}

/* leakdiff_is_tracing - 1 while new allocations are recorded, else 0. */
API int leakdiff_is_tracing(void)
{
    return ready() && lkd_track_recording();
}

/* leakdiff_traced_memory - traced bytes now and at their peak; 0. */
API int leakdiff_traced_memory(size_t *current, size_t *peak)
{
    uint64_t c = 0, p = 0;
    if (!ready())
        return -ENOSYS;
    lkd_track_memory(&c, &p);
    if (current)
        *current = (size_t)c;
    if (peak)
        *peak = (size_t)p;
    return 0;
}

/* leakdiff_reset_peak - the peak restarts from the current traced bytes; 0. */
API int leakdiff_reset_peak(void)
{
    if (!ready())
        return -ENOSYS;
    lkd_track_reset_peak();
    return 0;
}
