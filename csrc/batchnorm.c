/* Batch normalization kernels: training forward, inference forward, backward.
 *
 * One body per kernel, expanded for float and double by the DEFINE_* macros below.
 * Two layouts share the bodies:
 *   inner == 1  ((N, C) input): the contiguous axis is C, so rows are streamed and
 *               per-channel accumulators for a block of channels live on the stack;
 *   inner  > 1  ((N, C, *spatial)): the contiguous axis is spatial, so each channel
 *               is a set of n contiguous runs reduced with a SIMD reduction.
 * Statistics are shifted by the channel's first value before summing (shifted sums),
 * accumulated in double, so large offsets (1e4 + noise in float) keep their precision.
 */
#include <math.h>
#include "kernels.h"

/* Channels handled together in the (N, C) layout: two double accumulators each on
 * the stack (16 KiB), rows of the block stay contiguous. */
#define RS_BLOCK 1024
/* Rows summed in the storage type before flushing into the double accumulators. */
#define RS_FLUSH 8

#define DEFINE_BATCHNORM(T, SUF)                                                              \
                                                                                              \
/* Per-channel mean and biased variance of channel block [j0, j0 + nb), (N, C) layout. */     \
static void stats_rows_##SUF(size_t n, size_t c, size_t j0, size_t nb,                        \
                             const T *restrict x, double *restrict mu,                        \
                             double *restrict var)                                            \
{                                                                                             \
    double s[RS_BLOCK], q[RS_BLOCK];                                                          \
    T k[RS_BLOCK], ps[RS_BLOCK], pq[RS_BLOCK];                                                \
    for (size_t j = 0; j < nb; ++j) {                                                         \
        k[j] = x[j0 + j];                                                                     \
        s[j] = 0.0;                                                                           \
        q[j] = 0.0;                                                                           \
    }                                                                                         \
    for (size_t i0 = 0; i0 < n; i0 += RS_FLUSH) {                                             \
        size_t i1 = i0 + RS_FLUSH < n ? i0 + RS_FLUSH : n;                                    \
        for (size_t j = 0; j < nb; ++j) {                                                     \
            ps[j] = 0;                                                                        \
            pq[j] = 0;                                                                        \
        }                                                                                     \
        for (size_t i = i0; i < i1; ++i) {                                                    \
            const T *restrict row = x + i * c + j0;                                           \
            for (size_t j = 0; j < nb; ++j) {                                                 \
                T d = row[j] - k[j];                                                          \
                ps[j] += d;                                                                   \
                pq[j] += d * d;                                                               \
            }                                                                                 \
        }                                                                                     \
        for (size_t j = 0; j < nb; ++j) {                                                     \
            s[j] += (double)ps[j];                                                            \
            q[j] += (double)pq[j];                                                            \
        }                                                                                     \
    }                                                                                         \
    for (size_t j = 0; j < nb; ++j) {                                                         \
        double ms = s[j] / (double)n;                                                         \
        double v = q[j] / (double)n - ms * ms;                                                \
        mu[j] = (double)k[j] + ms;                                                            \
        var[j] = v > 0.0 ? v : 0.0;                                                           \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* Mean and biased variance of one channel in the (N, C, inner) layout. */                    \
static void stats_channel_##SUF(size_t n, size_t c, size_t inner, size_t j,                   \
                                const T *restrict x, double *mu, double *var)                 \
{                                                                                             \
    const double k = (double)x[j * inner];                                                    \
    double s = 0.0, q = 0.0;                                                                  \
    for (size_t i = 0; i < n; ++i) {                                                          \
        const T *restrict run = x + (i * c + j) * inner;                                      \
        _Pragma("omp simd reduction(+:s,q)")                                                  \
        for (size_t t = 0; t < inner; ++t) {                                                  \
            double d = (double)run[t] - k;                                                    \
            s += d;                                                                           \
            q += d * d;                                                                       \
        }                                                                                     \
    }                                                                                         \
    const double m = (double)(n * inner);                                                     \
    const double ms = s / m;                                                                  \
    const double v = q / m - ms * ms;                                                         \
    *mu = k + ms;                                                                             \
    *var = v > 0.0 ? v : 0.0;                                                                 \
}                                                                                             \
                                                                                              \
/* y = (x - k[j]) * a[j] + b[j] for channels [j0, j0 + nb), shared by both forwards;      \
 * subtracting the mean first keeps precision when x has a large offset. */                  \
static void affine_##SUF(size_t n, size_t c, size_t inner, size_t j0, size_t nb,              \
                         const T *restrict x, const T *restrict k, const T *restrict a,       \
                         const T *restrict b,                                                 \
                         T *restrict y)                                                       \
{                                                                                             \
    if (inner == 1) {                                                                         \
        for (size_t i = 0; i < n; ++i) {                                                      \
            const T *restrict xr = x + i * c + j0;                                            \
            T *restrict yr = y + i * c + j0;                                                  \
            for (size_t j = 0; j < nb; ++j)                                                   \
                yr[j] = (xr[j] - k[j]) * a[j] + b[j];                                         \
        }                                                                                     \
        return;                                                                               \
    }                                                                                         \
    for (size_t i = 0; i < n; ++i) {                                                          \
        for (size_t j = 0; j < nb; ++j) {                                                     \
            const size_t off = (i * c + j0 + j) * inner;                                      \
            const T *restrict xr = x + off;                                                   \
            T *restrict yr = y + off;                                                         \
            const T kj = k[j], aj = a[j], bj = b[j];                                          \
            for (size_t t = 0; t < inner; ++t)                                                \
                yr[t] = (xr[t] - kj) * aj + bj;                                               \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
void rs_batchnorm_forward_##SUF(size_t n, size_t c, size_t inner,                             \
                                const T *x, const T *gamma, const T *beta,                    \
                                T eps, T momentum, T *running_mean, T *running_var,           \
                                T *y, T *mean, T *invstd)                                     \
{                                                                                             \
    const double m = (double)(n * inner);                                                     \
    const double unbias = m / (m - 1.0);                                                      \
    const double mom = (double)momentum;                                                      \
    double mu[RS_BLOCK], var[RS_BLOCK];                                                       \
    T a[RS_BLOCK];                                                                            \
    for (size_t j0 = 0; j0 < c; j0 += RS_BLOCK) {                                             \
        const size_t nb = c - j0 < RS_BLOCK ? c - j0 : RS_BLOCK;                              \
        if (inner == 1)                                                                       \
            stats_rows_##SUF(n, c, j0, nb, x, mu, var);                                       \
        else                                                                                  \
            for (size_t j = 0; j < nb; ++j)                                                   \
                stats_channel_##SUF(n, c, inner, j0 + j, x, &mu[j], &var[j]);                 \
        for (size_t j = 0; j < nb; ++j) {                                                     \
            const double is = 1.0 / sqrt(var[j] + (double)eps);                               \
            const double aj = (double)gamma[j0 + j] * is;                                     \
            mean[j0 + j] = (T)mu[j];                                                          \
            invstd[j0 + j] = (T)is;                                                           \
            a[j] = (T)aj;                                                                     \
            if (running_mean && running_var) {                                                \
                running_mean[j0 + j] =                                                        \
                    (T)((1.0 - mom) * (double)running_mean[j0 + j] + mom * mu[j]);            \
                running_var[j0 + j] =                                                         \
                    (T)((1.0 - mom) * (double)running_var[j0 + j] + mom * var[j] * unbias);   \
            }                                                                                 \
        }                                                                                     \
        affine_##SUF(n, c, inner, j0, nb, x, mean + j0, a, beta + j0, y);                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
void rs_batchnorm_inference_##SUF(size_t n, size_t c, size_t inner,                           \
                                  const T *x, const T *gamma, const T *beta,                  \
                                  const T *running_mean, const T *running_var,                \
                                  T eps, T *y)                                                \
{                                                                                             \
    T a[RS_BLOCK];                                                                            \
    for (size_t j0 = 0; j0 < c; j0 += RS_BLOCK) {                                             \
        const size_t nb = c - j0 < RS_BLOCK ? c - j0 : RS_BLOCK;                              \
        for (size_t j = 0; j < nb; ++j) {                                                     \
            const double is = 1.0 / sqrt((double)running_var[j0 + j] + (double)eps);          \
            a[j] = (T)((double)gamma[j0 + j] * is);                                           \
        }                                                                                     \
        affine_##SUF(n, c, inner, j0, nb, x, running_mean + j0, a, beta + j0, y);             \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* sum(dy) and sum(dy * (x - mean)) per channel, channel block [j0, j0 + nb). */             \
static void grad_sums_##SUF(size_t n, size_t c, size_t inner, size_t j0, size_t nb,           \
                            const T *restrict dy, const T *restrict x,                        \
                            const T *restrict mean, double *restrict sd,                      \
                            double *restrict sdx)                                             \
{                                                                                             \
    if (inner == 1) {                                                                         \
        T ps[RS_BLOCK], px[RS_BLOCK];                                                         \
        const T *restrict mu = mean + j0;                                                     \
        for (size_t j = 0; j < nb; ++j) {                                                     \
            sd[j] = 0.0;                                                                      \
            sdx[j] = 0.0;                                                                     \
        }                                                                                     \
        for (size_t i0 = 0; i0 < n; i0 += RS_FLUSH) {                                         \
            size_t i1 = i0 + RS_FLUSH < n ? i0 + RS_FLUSH : n;                                \
            for (size_t j = 0; j < nb; ++j) {                                                 \
                ps[j] = 0;                                                                    \
                px[j] = 0;                                                                    \
            }                                                                                 \
            for (size_t i = i0; i < i1; ++i) {                                                \
                const T *restrict g = dy + i * c + j0;                                        \
                const T *restrict xr = x + i * c + j0;                                        \
                for (size_t j = 0; j < nb; ++j) {                                             \
                    ps[j] += g[j];                                                            \
                    px[j] += g[j] * (xr[j] - mu[j]);                                          \
                }                                                                             \
            }                                                                                 \
            for (size_t j = 0; j < nb; ++j) {                                                 \
                sd[j] += (double)ps[j];                                                       \
                sdx[j] += (double)px[j];                                                      \
            }                                                                                 \
        }                                                                                     \
        return;                                                                               \
    }                                                                                         \
    for (size_t j = 0; j < nb; ++j) {                                                         \
        const double mu = (double)mean[j0 + j];                                               \
        double s = 0.0, sx = 0.0;                                                             \
        for (size_t i = 0; i < n; ++i) {                                                      \
            const size_t off = (i * c + j0 + j) * inner;                                      \
            const T *restrict g = dy + off;                                                   \
            const T *restrict xr = x + off;                                                   \
            _Pragma("omp simd reduction(+:s,sx)")                                             \
            for (size_t t = 0; t < inner; ++t) {                                              \
                s += (double)g[t];                                                            \
                sx += (double)g[t] * ((double)xr[t] - mu);                                    \
            }                                                                                 \
        }                                                                                     \
        sd[j] = s;                                                                            \
        sdx[j] = sx;                                                                          \
    }                                                                                         \
}                                                                                             \
                                                                                              \
void rs_batchnorm_backward_##SUF(size_t n, size_t c, size_t inner,                            \
                                 const T *dy, const T *x, const T *gamma,                     \
                                 const T *mean, const T *invstd,                              \
                                 T *dx, T *dgamma, T *dbeta)                                  \
{                                                                                             \
    /* dx = A * dy + B * (x - mean) + D per channel, with                                     \
     *   A = gamma * invstd,  B = -A * invstd**2 * sum(dy * (x - mean)) / m,                  \
     *   D = -A * sum(dy) / m. */                                                             \
    const double m = (double)(n * inner);                                                     \
    double sd[RS_BLOCK], sdx[RS_BLOCK];                                                       \
    T A[RS_BLOCK], B[RS_BLOCK], D[RS_BLOCK];                                                  \
    for (size_t j0 = 0; j0 < c; j0 += RS_BLOCK) {                                             \
        const size_t nb = c - j0 < RS_BLOCK ? c - j0 : RS_BLOCK;                              \
        grad_sums_##SUF(n, c, inner, j0, nb, dy, x, mean, sd, sdx);                           \
        for (size_t j = 0; j < nb; ++j) {                                                     \
            const double is = (double)invstd[j0 + j];                                         \
            const double aj = (double)gamma[j0 + j] * is;                                     \
            const double bj = -aj * is * is * sdx[j] / m;                                     \
            dbeta[j0 + j] = (T)sd[j];                                                         \
            dgamma[j0 + j] = (T)(sdx[j] * is);                                                \
            A[j] = (T)aj;                                                                     \
            B[j] = (T)bj;                                                                     \
            D[j] = (T)(-aj * sd[j] / m);                                                      \
        }                                                                                     \
        const T *restrict mu = mean + j0;                                                     \
        if (inner == 1) {                                                                     \
            for (size_t i = 0; i < n; ++i) {                                                  \
                const T *restrict g = dy + i * c + j0;                                        \
                const T *restrict xr = x + i * c + j0;                                        \
                T *restrict out = dx + i * c + j0;                                            \
                for (size_t j = 0; j < nb; ++j)                                               \
                    out[j] = A[j] * g[j] + B[j] * (xr[j] - mu[j]) + D[j];                     \
            }                                                                                 \
        } else {                                                                              \
            for (size_t i = 0; i < n; ++i) {                                                  \
                for (size_t j = 0; j < nb; ++j) {                                             \
                    const size_t off = (i * c + j0 + j) * inner;                              \
                    const T *restrict g = dy + off;                                           \
                    const T *restrict xr = x + off;                                           \
                    T *restrict out = dx + off;                                               \
                    const T aj = A[j], bj = B[j], dj = D[j], kj = mu[j];                      \
                    for (size_t t = 0; t < inner; ++t)                                        \
                        out[t] = aj * g[t] + bj * (xr[t] - kj) + dj;                          \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}

DEFINE_BATCHNORM(float, f32)
DEFINE_BATCHNORM(double, f64)
