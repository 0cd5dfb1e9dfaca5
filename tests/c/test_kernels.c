/* C driver for csrc/kernels.h: every _f32/_f64 kernel against plain reference loops.
 *
 * Built and run by tests/test_c_sanitizers.py under ASan/UBSan. Buffers are malloc'd to
 * their exact sizes so any out-of-bounds access is caught. Exit status 0 when every
 * result matches its reference, 1 otherwise (each mismatch is printed to stderr).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels.h"

/* Layouts (n, c, inner): (N, C) and (N, C, *spatial) input, sizes that are not multiples
 * of a vector width, and more than 1024 channels (the kernels block channels by 1024). */
static const size_t LAYOUTS[][3] = {
    {2, 1, 1}, {3, 7, 1}, {64, 128, 1}, {5, 3, 16}, {2, 3, 35}, {9, 2049, 1}, {2, 1030, 3},
};
static const size_t SIZES[] = {1, 3, 7, 17, 1000, 1029, 4099};
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

/* Every kernel of one storage type T against the double references; `xd` etc. hold the
 * same values as the T arrays, widened to double. */
#define DEFINE_TESTS(T, SUF, TOL)                                                            \
                                                                                             \
static T *fill_##SUF(size_t size, double lo, double hi, unsigned long long *rng)            \
{                                                                                            \
    T *a = malloc(size * sizeof *a);                                                         \
    for (size_t i = 0; i < size; ++i)                                                        \
        a[i] = (T)(lo + (hi - lo) * uniform(rng));                                           \
    return a;                                                                                \
}                                                                                            \
                                                                                             \
static double *widen_##SUF(const T *a, size_t size)                                         \
{                                                                                            \
    double *d = malloc(size * sizeof *d);                                                    \
    for (size_t i = 0; i < size; ++i)                                                        \
        d[i] = (double)a[i];                                                                 \
    return d;                                                                                \
}                                                                                            \
                                                                                             \
/* Number of mismatches of the three batchnorm kernels on one layout. */                     \
static int test_batchnorm_##SUF(size_t n, size_t c, size_t inner, double offset,            \
                                unsigned long long *rng)                                     \
{                                                                                            \
    int bad = 0;                                                                             \
    const size_t size = n * c * inner;                                                       \
    const double m = (double)(n * inner), eps = 1e-5, momentum = 0.1;                        \
    T *x = fill_##SUF(size, offset - 2.0, offset + 2.0, rng);                                \
    T *dy = fill_##SUF(size, -1.0, 1.0, rng);                                                \
    T *gamma = fill_##SUF(c, 0.5, 1.5, rng), *beta = fill_##SUF(c, -1.0, 1.0, rng);          \
    T *rmean = fill_##SUF(c, -1.0, 1.0, rng), *rvar = fill_##SUF(c, 0.5, 2.0, rng);          \
    double *xd = widen_##SUF(x, size), *dyd = widen_##SUF(dy, size);                         \
    double *rmean0 = widen_##SUF(rmean, c), *rvar0 = widen_##SUF(rvar, c);                   \
    T *y = malloc(size * sizeof *y), *dx = malloc(size * sizeof *dx);                        \
    T *mean = malloc(c * sizeof *mean), *invstd = malloc(c * sizeof *invstd);                \
    T *dgamma = malloc(c * sizeof *dgamma), *dbeta = malloc(c * sizeof *dbeta);              \
                                                                                             \
    rs_batchnorm_forward_##SUF(n, c, inner, x, gamma, beta, (T)eps, (T)momentum, rmean,     \
                               rvar, y, mean, invstd);                                       \
    for (size_t j = 0; j < c; ++j) {                                                         \
        double mu, var;                                                                      \
        ref_stats(n, c, inner, xd, j, &mu, &var);                                            \
        const double is = 1.0 / sqrt(var + eps), g = (double)gamma[j];                       \
        expect(&bad, #SUF " mean", j, (double)mean[j], mu, TOL);                                   \
        expect(&bad, #SUF " invstd", j, (double)invstd[j], is, TOL);                               \
        expect(&bad, #SUF " running_mean", j, (double)rmean[j],                                    \
               (1.0 - momentum) * rmean0[j] + momentum * mu, TOL);                           \
        expect(&bad, #SUF " running_var", j, (double)rvar[j],                                      \
               (1.0 - momentum) * rvar0[j] + momentum * var * m / (m - 1.0), TOL);           \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t t = 0; t < inner; ++t) {                                             \
                const size_t k = (i * c + j) * inner + t;                                    \
                expect(&bad, #SUF " y", k, (double)y[k], g * (xd[k] - mu) * is + (double)beta[j],  \
                       10 * TOL);                                                            \
            }                                                                                \
        mean[j] = (T)mu; /* backward from exact statistics, so only it is tested */         \
        invstd[j] = (T)is;                                                                   \
    }                                                                                        \
                                                                                             \
    rs_batchnorm_backward_##SUF(n, c, inner, dy, x, gamma, mean, invstd, dx, dgamma, dbeta); \
    for (size_t j = 0; j < c; ++j) {                                                         \
        const double mu = (double)mean[j], is = (double)invstd[j], g = (double)gamma[j];     \
        double sd = 0.0, sdx = 0.0;                                                          \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t t = 0; t < inner; ++t) {                                             \
                const size_t k = (i * c + j) * inner + t;                                    \
                sd += dyd[k];                                                                \
                sdx += dyd[k] * (xd[k] - mu) * is;                                           \
            }                                                                                \
        expect(&bad, #SUF " dbeta", j, (double)dbeta[j], sd, 10 * TOL * sqrt(m));                  \
        expect(&bad, #SUF " dgamma", j, (double)dgamma[j], sdx, 10 * TOL * sqrt(m));               \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t t = 0; t < inner; ++t) {                                             \
                const size_t k = (i * c + j) * inner + t;                                    \
                const double xhat = (xd[k] - mu) * is;                                       \
                expect(&bad, #SUF " dx", k, (double)dx[k],                                         \
                       g * is / m * (m * dyd[k] - sd - xhat * sdx), 100 * TOL);              \
            }                                                                                \
    }                                                                                        \
                                                                                             \
    rs_batchnorm_inference_##SUF(n, c, inner, x, gamma, beta, rmean, rvar, (T)eps, y);      \
    for (size_t k = 0; k < size; ++k) {                                                      \
        const size_t j = k / inner % c;                                                      \
        expect(&bad, #SUF " inference y", k, (double)y[k],                                         \
               (double)gamma[j] * (xd[k] - (double)rmean[j]) /                               \
                       sqrt((double)rvar[j] + eps) + (double)beta[j],                        \
               10 * TOL);                                                                    \
    }                                                                                        \
                                                                                             \
    /* Without running statistics (NULL) the rest is unchanged. */                          \
    rs_batchnorm_forward_##SUF(n, c, inner, x, gamma, beta, (T)eps, (T)momentum, NULL,      \
                               NULL, y, mean, invstd);                                       \
    for (size_t j = 0; j < c; ++j) {                                                         \
        double mu, var;                                                                      \
        ref_stats(n, c, inner, xd, j, &mu, &var);                                            \
        expect(&bad, #SUF " mean (no running)", j, (double)mean[j], mu, TOL);                      \
    }                                                                                        \
    free(x), free(dy), free(gamma), free(beta), free(rmean), free(rvar), free(xd);           \
    free(dyd), free(rmean0), free(rvar0), free(y), free(dx), free(mean), free(invstd);       \
    free(dgamma), free(dbeta);                                                               \
    return bad;                                                                              \
}                                                                                            \
                                                                                             \
/* Number of mismatches of one step of each optimizer on `size` values. */                   \
static int test_optim_##SUF(size_t size, unsigned long long *rng)                           \
{                                                                                            \
    int bad = 0;                                                                             \
    const double lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.1;               \
    T *p = fill_##SUF(size, -1.0, 1.0, rng), *g = fill_##SUF(size, -1.0, 1.0, rng);          \
    T *m = fill_##SUF(size, -0.1, 0.1, rng), *v = fill_##SUF(size, 0.0, 0.01, rng);          \
    double *pd = widen_##SUF(p, size), *gd = widen_##SUF(g, size);                           \
    double *md = widen_##SUF(m, size), *vd = widen_##SUF(v, size);                          \
    const long long step = 3;                                                                \
                                                                                             \
    rs_adam_update_##SUF(size, p, g, m, v, step, lr, beta1, beta2, eps, wd);                 \
    for (size_t i = 0; i < size; ++i) {                                                      \
        md[i] = beta1 * md[i] + (1.0 - beta1) * gd[i];                                       \
        vd[i] = beta2 * vd[i] + (1.0 - beta2) * gd[i] * gd[i];                               \
        const double mhat = md[i] / (1.0 - pow(beta1, (double)step));                        \
        const double vhat = vd[i] / (1.0 - pow(beta2, (double)step));                        \
        pd[i] = pd[i] - lr * wd * pd[i] - lr * mhat / (sqrt(vhat) + eps);                    \
        expect(&bad, #SUF " adam m", i, (double)m[i], md[i], TOL);                                 \
        expect(&bad, #SUF " adam v", i, (double)v[i], vd[i], TOL);                                 \
        expect(&bad, #SUF " adam param", i, (double)p[i], pd[i], TOL);                             \
    }                                                                                        \
                                                                                             \
    rs_momentum_update_##SUF(size, p, g, m, lr, beta1);                                      \
    for (size_t i = 0; i < size; ++i) {                                                      \
        md[i] = beta1 * md[i] + (1.0 - beta1) * gd[i];                                       \
        pd[i] -= lr * md[i];                                                                 \
        expect(&bad, #SUF " momentum velocity", i, (double)m[i], md[i], TOL);                      \
        expect(&bad, #SUF " momentum param", i, (double)p[i], pd[i], TOL);                         \
    }                                                                                        \
                                                                                             \
    rs_rmsprop_update_##SUF(size, p, g, v, lr, beta2, eps);                                  \
    for (size_t i = 0; i < size; ++i) {                                                      \
        vd[i] = beta2 * vd[i] + (1.0 - beta2) * gd[i] * gd[i];                               \
        pd[i] -= lr * gd[i] / (sqrt(vd[i]) + eps);                                           \
        expect(&bad, #SUF " rmsprop sq", i, (double)v[i], vd[i], TOL);                             \
        expect(&bad, #SUF " rmsprop param", i, (double)p[i], pd[i], TOL);                          \
    }                                                                                        \
                                                                                             \
    rs_sgd_update_##SUF(size, p, g, lr, wd);                                                 \
    for (size_t i = 0; i < size; ++i) {                                                      \
        pd[i] -= lr * (gd[i] + wd * pd[i]);                                                  \
        expect(&bad, #SUF " sgd param", i, (double)p[i], pd[i], TOL);                              \
    }                                                                                        \
    free(p), free(g), free(m), free(v), free(pd), free(gd), free(md), free(vd);              \
    return bad;                                                                              \
}

DEFINE_TESTS(float, f32, 1e-4)
DEFINE_TESTS(double, f64, 1e-10)

int main(void)
{
    unsigned long long rng = 0x9E3779B97F4A7C15ULL;
    int bad = 0;
    for (size_t k = 0; k < COUNT(LAYOUTS); ++k) {
        const size_t n = LAYOUTS[k][0], c = LAYOUTS[k][1], inner = LAYOUTS[k][2];
        bad += test_batchnorm_f32(n, c, inner, 0.0, &rng);
        bad += test_batchnorm_f64(n, c, inner, 0.0, &rng);
    }
    /* A large offset: the float statistics must still match the double reference. */
    bad += test_batchnorm_f32(256, 5, 1, 1e4, &rng);
    bad += test_batchnorm_f32(16, 5, 16, 1e4, &rng);
    bad += test_batchnorm_f64(256, 5, 1, 1e4, &rng);
    for (size_t k = 0; k < COUNT(SIZES); ++k) {
        bad += test_optim_f32(SIZES[k], &rng);
        bad += test_optim_f64(SIZES[k], &rng);
    }
    if (bad) {
        fprintf(stderr, "%d mismatches\n", bad);
        return 1;
    }
    return 0;
}
