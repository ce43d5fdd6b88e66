/*
 * estimate - what one sampled block stands for: the inverse-probability weights of the
 * sampled mode (LEAKDIFF_SAMPLE), shared by the shim (its running totals, the snapshot's
 * totals) and the analyzer (every group), so both compute exactly the same figures.
 *
 * The sampler (sample.h) records a block of size s with probability p = 1 - exp(-s/rate).
 * Counting each recorded block as s/p bytes and 1/p blocks gives unbiased estimates of the
 * bytes and blocks of every allocation, recorded or not (the Horvitz-Thompson estimator):
 * E[sum over recorded blocks of s/p] = sum over all blocks of p * s/p = the true sum.
 * Pure: no allocation, no I/O, no global state.
 */
#ifndef LKD_ESTIMATE_H
#define LKD_ESTIMATE_H

#include <stdint.h>

double lkd_estimate_prob(uint64_t size, uint64_t rate);
double lkd_estimate_bytes(uint64_t size, uint64_t rate);
double lkd_estimate_blocks(uint64_t size, uint64_t rate);
uint64_t lkd_estimate_round(double v);

#endif
