/* C driver for csrc/kernels.h: every _f32/_f64 kernel against plain reference loops (the
 * fused batchnorm + ReLU kernels against the unfused ones, exactly; the max pooling against its
 * first maximum, exactly; the Winograd transforms against their matrices), once per instruction
 * set this CPU runs.
 *
 * Built and run by tests/test_c_sanitizers.py under ASan/UBSan. Buffers are malloc'd to
 * their exact sizes so any out-of-bounds access is caught. The tests of each type are one
 * body in test_kernels_impl.h, included once per type. Exit status 0 when every
 * result matches its reference, 1 otherwise (each mismatch is printed to stderr).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "twin.h"

/* Layouts (n, c, inner): (N, C) and (N, C, *spatial) input, sizes that are not multiples
 * of a vector width, and channels over more than one strip of RS_STRIP_BYTES (8192 float or
 * 4096 double channels, batchnorm_impl.h): 4097 channels are two double strips, 8291 two
 * float and three double strips (inference sweeps strips for inner > 1 too). Three after
 * them are over RS_CACHED_BYTES (4 MiB) in both types: the channel-group path, with groups of one
 * channel, of 64 by the span rule (short runs; the last group partial), and of 8 to 32 by size
 * (the last group partial). The very last is over RS_STREAM_BYTES (16 MiB) in both types: four
 * rows a sweep (in the forward 256 rows apart), then the three left. */
static const size_t LAYOUTS[][3] = {
    {2, 1, 1},    {3, 7, 1},    {64, 128, 1}, {5, 3, 16},
    {2, 3, 35},   {9, 4097, 1}, {2, 1030, 3}, {3, 8291, 1}, {2, 8291, 2},
    {4, 9, 32771}, {1024, 70, 16}, {2, 600, 1024}, {1027, 4099, 1},
};
static const size_t SIZES[] = {1, 3, 7, 17, 1000, 1029, 4099};
/* (rows, classes) of the softmax cross-entropy: one class, one row, a wide row. */
static const size_t CLASSES[][2] = {{1, 1}, {5, 1}, {64, 10}, {3, 1000}};
/* (channels, length, windows) of the max pooling: no values outside the windows, a tail of
 * them (an odd image), one window, rows longer than a vector. */
static const size_t POOLS[][3] = {{1, 4, 1}, {3, 23, 5}, {2, 64, 16}, {5, 4140, 1033}};
/* (channels, height, width, lanes) of the Winograd transforms: one tile, one lane; lanes over
 * one chunk of 64 (RS_WINO_CHUNK, winograd.c) and a partial one; a non-square image. */
static const size_t WINOGRADS[][4] = {{1, 2, 2, 1}, {2, 4, 4, 64}, {3, 6, 4, 70}, {2, 8, 6, 3}};
/* B^T and A^T of F(2x2, 3x3) (csrc/kernels.h). */
static const double WINO_BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
static const double WINO_AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* xorshift64*: deterministic uniform numbers in [0, 1) without global state. */
static double uniform(unsigned long long *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (double)((*state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* Count a mismatch of got against want, tolerance relative to max(1, |want|); the first
 * few of each test are printed. */
static void expect(int *bad, const char *what, size_t i, double got, double want, double tol)
{
    const double scale = fabs(want) > 1.0 ? fabs(want) : 1.0;
    if (!(fabs(got - want) <= tol * scale)) {
        if (*bad < 10)
            fprintf(stderr, "%s[%zu]: got %.17g, want %.17g\n", what, i, got, want);
        ++*bad;
    }
}

/* Reference mean and biased variance of channel j, two passes in double. */
static void ref_stats(size_t n, size_t c, size_t inner, const double *x, size_t j,
                      double *mean, double *var)
{
    const double m = (double)(n * inner);
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; ++i)
        for (size_t t = 0; t < inner; ++t)
            s += x[(i * c + j) * inner + t];
    *mean = s / m;
    for (size_t i = 0; i < n; ++i)
        for (size_t t = 0; t < inner; ++t) {
            const double d = x[(i * c + j) * inner + t] - *mean;
            q += d * d;
        }
    *var = q / m;
}

#define STR_(s) #s
#define STR(s) STR_(s)

#define T float
#define SUF f32
#define TOL 1e-4
#include "test_kernels_impl.h"
#undef T
#undef SUF
#undef TOL

#define T double
#define SUF f64
#define TOL 1e-10
#include "test_kernels_impl.h"
#undef T
#undef SUF
#undef TOL

/* Mismatches of every kernel of instruction set isa. */
static int test_isa(int isa, unsigned long long *rng)
{
    int bad = 0;
    for (size_t k = 0; k < COUNT(LAYOUTS); ++k) {
        const size_t n = LAYOUTS[k][0], c = LAYOUTS[k][1], inner = LAYOUTS[k][2];
        bad += test_batchnorm_f32(isa, n, c, inner, 0.0, rng);
        bad += test_batchnorm_f64(isa, n, c, inner, 0.0, rng);
        bad += test_batchnorm_relu_f32(isa, n, c, inner, rng);
        bad += test_batchnorm_relu_f64(isa, n, c, inner, rng);
    }
    /* A large offset: the float statistics must still match the double reference. */
    bad += test_batchnorm_f32(isa, 256, 5, 1, 1e4, rng);
    bad += test_batchnorm_f32(isa, 16, 5, 16, 1e4, rng);
    bad += test_batchnorm_f64(isa, 256, 5, 1, 1e4, rng);
    /* Large (N, C) inputs off a 64-byte boundary, as numpy places them (16 bytes past); an
     * odd row count leaves one row after the forward's two-row sweeps. */
    bad += test_batchnorm_placement_f32(isa, 1025, 1024, 16, rng);
    bad += test_batchnorm_placement_f64(isa, 513, 1024, 16, rng);
    bad += test_batchnorm_placement_f64(isa, 512, 1024, 40, rng);
    for (size_t k = 0; k < COUNT(SIZES); ++k) {
        bad += test_optim_f32(isa, SIZES[k], rng);
        bad += test_optim_f64(isa, SIZES[k], rng);
    }
    for (int packed = 0; packed <= 1; ++packed) {
        bad += test_optim_batched_f32(isa, packed, rng);
        bad += test_optim_batched_f64(isa, packed, rng);
    }
    for (size_t k = 0; k < COUNT(POOLS); ++k) {
        bad += test_pool_f32(isa, POOLS[k][0], POOLS[k][1], POOLS[k][2], rng);
        bad += test_pool_f64(isa, POOLS[k][0], POOLS[k][1], POOLS[k][2], rng);
    }
    for (size_t k = 0; k < COUNT(WINOGRADS); ++k) {
        const size_t *size = WINOGRADS[k];
        bad += test_winograd_f32(isa, size[0], size[1], size[2], size[3], rng);
        bad += test_winograd_f64(isa, size[0], size[1], size[2], size[3], rng);
    }
    for (size_t k = 0; k < COUNT(CLASSES); ++k) {
        bad += test_loss_f32(isa, CLASSES[k][0], CLASSES[k][1], rng);
        bad += test_loss_f64(isa, CLASSES[k][0], CLASSES[k][1], rng);
    }
    return bad;
}

/* Every instruction set this CPU runs; each one's name is printed on stdout. */
int main(void)
{
    static const char *const NAMES[] = {"baseline", "avx2", "avx512"};
    int bad = 0;
    for (int isa = RS_ISA_BASELINE; isa <= RS_ISA_AVX512; ++isa) {
        if (!rs_isa_supported(isa))
            continue;
        unsigned long long rng = 0x9E3779B97F4A7C15ULL;
        const int isa_bad = test_isa(isa, &rng);
        printf("%s\n", NAMES[isa]);
        if (isa_bad)
            fprintf(stderr, "%s: %d mismatches\n", NAMES[isa], isa_bad);
        bad += isa_bad;
    }
    return bad ? 1 : 0;
}
