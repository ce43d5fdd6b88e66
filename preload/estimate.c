/*
 * estimate - the sampled mode's weights (see estimate.h). Pure arithmetic on doubles; the
 * shim and the analyzer link this same file, so a snapshot's totals and the analyzer's
 * groups agree to the rounding.
 */
#include "estimate.h"

#include <math.h>

/*
 * lkd_estimate_prob - the probability that the sampler records a block of size bytes when
 * one sample is drawn per rate bytes on average: 1 - exp(-size/rate), computed with expm1 so
 * that it stays exact for size << rate. 1 when rate is 0 (every block is recorded); 0 for a
 * zero-byte block in sampled mode (it covers no bytes, so the countdown never stops on it).
 */
double lkd_estimate_prob(uint64_t size, uint64_t rate)
{
    if (!rate)
        return 1.0;
    return -expm1(-(double)size / (double)rate);
}

/* lkd_estimate_bytes - bytes a recorded block of size bytes stands for: size / p; size
 * itself when rate is 0. A zero-byte block stands for 0 bytes. */
double lkd_estimate_bytes(uint64_t size, uint64_t rate)
{
    if (!rate || !size)
        return (double)size;
    return (double)size / lkd_estimate_prob(size, rate);
}

/* lkd_estimate_blocks - blocks a recorded block of size bytes stands for: 1 / p; 1 when rate
 * is 0 and for a zero-byte block (which the sampler never picks; one recorded anyway, e.g. by
 * an older writer, is counted once). */
double lkd_estimate_blocks(uint64_t size, uint64_t rate)
{
    if (!rate || !size)
        return 1.0;
    return 1.0 / lkd_estimate_prob(size, rate);
}

/* lkd_estimate_round - v rounded to the nearest whole number (halves up), 0 for negative or
 * NaN v, UINT64_MAX when v is beyond it. */
uint64_t lkd_estimate_round(double v)
{
    if (!(v > 0))
        return 0;
    if (v >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t)(v + 0.5);
}
