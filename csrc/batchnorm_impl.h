/* Batch normalization kernels: training forward, inference forward, backward, each also
 * fused with a ReLU after it (batchnorm_relu_*).
 *
 * The body of the variants of every instruction set and type, included by batchnorm.c
 * through each_isa.h with ISA, T (the storage type) and SUF (the suffix) defined;
 * TWIN(name) (twin.h) appends both suffixes to a name. Every reduction below has a fixed
 * order and lane count, whatever the vector width, so all variants give the same bits.
 *
 * Every kernel is two passes over its inputs: per-channel sums, then one elementwise
 * pass  y = (x - k) * a + b2  (k the shift below)  or  dx = A * (dy - mean(dy)) +
 * B * (x - mean)  with per-channel coefficients computed once in double (no per-element
 * divide). Two layouts share the bodies:
 *   inner == 1  ((N, C) input): the contiguous axis is C. Channels go in strips of
 *               RS_STRIP_BYTES of each row (all of it when rows are shorter): both passes
 *               sweep a strip a few rows at a time, vectorized along the channels, with
 *               per-channel sums and coefficients on the stack. Wide strips keep the
 *               hardware prefetchers streaming (4 KiB segments were a third slower; 16 KiB
 *               ones 5-15% slower than 32 KiB at 4096 double or 8192 float channels).
 *               Inputs of RS_CACHED_BYTES and more start with a lead strip of the few
 *               channels before the first 64-byte boundary (strip_lead), so the wide
 *               strips' vector loads never split a cache line: numpy puts a large
 *               array 16 bytes past a page, where every other 32-byte load split and
 *               the backward took 11-13% longer. Each channel is reduced on its own,
 *               in the same order whatever strip holds it, so the bits do not change.
 *   inner  > 1  ((N, C, *spatial)): the contiguous axis is spatial; a channel is n runs
 *               of inner values, c * inner apart, reduced into LANES independent lanes.
 *               Inputs under RS_CACHED_BYTES (likely in cache already) go one channel at
 *               a time, whose second pass re-reads its runs from L1/L2. Larger inputs go
 *               in groups of adjacent channels, so that a sample's runs of a group make
 *               one contiguous span, and in stages: the stage that sums group k applies
 *               group k - 1 (summed by the stage before, its data still in L2) in the
 *               same loop, run by run, so the stores of one pass overlap the loads of the
 *               other and memory sees one stream per array, as in a single pass. The sums
 *               also fetch the next sample's span ahead (software prefetch). A group
 *               takes RS_GROUP_BYTES of input, so that two groups and an output fit in
 *               any L2 (512 KiB and up), unless that makes a span shorter than
 *               RS_SPAN_BYTES: short spans, then a jump, defeat the prefetchers (with
 *               64-byte runs, groups of 1 MiB were 2.3-2.9x slower than 64 channels).
 *               On an AVX-512 Xeon (2 MiB L2), groups of 1 MiB made the 32x64x32x32
 *               passes 1.2-1.45x slower than these. Each channel's lanes take the same
 *               values in the same order on both paths.
 * Statistics are shifted by the channel's first value before summing (shifted sums).
 * The arithmetic stays in the storage type; partial sums of at most RS_FLUSH rows or
 * RS_RUN values are flushed into double, so float input with a large offset
 * (1e4 + noise) keeps its variance to about 1e-6 relative.
 *
 * ReLU fusion. The elementwise passes and the backward sums are written once, as inline
 * bodies taking a constant `relu` flag, and compiled twice through two
 * wrappers (relu 0 and 1), so the plain kernels' loops are exactly as before and the fused
 * ones differ only by the ReLU: forward stores  v < 0 ? 0 : v  (NaN stays NaN) in place of
 * v; backward reads  g = y > 0 ? dy : 0  in place of dy in both of its passes (the mask
 * costs one more read stream, y; the masked gradient is never stored). Every other
 * operation is the same, in the same order, so the fused results equal the unfused
 * composition bit for bit.
 */
#if !defined(T) || !defined(SUF)
#error "define T (float or double) and SUF (f32 or f64) before including batchnorm_impl.h"
#endif

#ifndef RESEARCH_BATCHNORM_CONSTANTS
#define RESEARCH_BATCHNORM_CONSTANTS
/* Bytes of a row in one channel strip of the (N, C) layout: 8192 float or 4096 double
 * channels, whose per-channel work arrays take 192 or 128 KiB of stack in the forward,
 * 224 or 160 KiB in the backward. */
#define RS_STRIP_BYTES 32768
/* Rows of a strip summed in the storage type before flushing into double. */
#define RS_FLUSH 32
/* Values of one channel summed in the storage type before flushing into double. */
#define RS_RUN 1024
/* (N, C, inner) layout: inputs under RS_CACHED_BYTES are taken to be in cache (L2, L3)
 * and processed one channel at a time; larger ones in groups of channels whose inputs,
 * all samples counted, take about RS_GROUP_BYTES (half of the smallest common L2), or
 * more channels when a sample's span of the group would be shorter than RS_SPAN_BYTES;
 * at most RS_GROUP_MAX channels. */
#define RS_CACHED_BYTES (4u << 20)
/* (N, C) layout: inputs of RS_STREAM_BYTES and more come from memory, not from an L3, and
 * their passes sweep four rows at a time (sweep_rows, grad_sums_rows_body), in the forward
 * rows n/4 apart (shifted_sums_rows, affine_rows_body); the backward's
 * elementwise pass only when a strip's channels take more than RS_L1_COEF_BYTES, so that its
 * four coefficient arrays outgrow half of L1 (with 1024 float channels, four rows a sweep were
 * 4-16% slower than one). */
#define RS_STREAM_BYTES (16u << 20)
#define RS_L1_COEF_BYTES 4096u
#define RS_GROUP_BYTES (256u << 10)
#define RS_SPAN_BYTES 8192u
#define RS_GROUP_MAX 64
/* For a body that must be inlined into its two wrappers (relu 0 and 1): left out of line
 * (as GCC leaves the large stage bodies), it would test the flag on every value. */
#if defined(__GNUC__)
#define RS_INLINE inline __attribute__((always_inline))
#else
#define RS_INLINE inline
#endif
/* Asks for the cache line at p ahead of its use; nothing where unsupported. */
#if defined(__GNUC__)
#define RS_PREFETCH(p) __builtin_prefetch(p)
#else
#define RS_PREFETCH(p) ((void)(p))
#endif
#endif

/* Channels in one strip of the (N, C) layout. */
#define STRIP (RS_STRIP_BYTES / sizeof(T))

/* (N, C) layout of an input at x: the channels of its lead strip, those before the first
 * 64-byte boundary of a row (0 when x is aligned, when rows start at different offsets,
 * or when the input is small enough to be in cache, where a split load costs little
 * and the extra strip more). The other arrays of the kernel gain as well when they are
 * placed alike, as numpy places arrays of one size. */
static size_t TWIN(strip_lead)(size_t n, size_t c, const T *x)
{
    const size_t offset = (size_t)((uintptr_t)x % 64);
    if (n * c * sizeof(T) < RS_CACHED_BYTES || (c * sizeof(T)) % 64 != 0 || offset == 0 ||
        offset % sizeof(T) != 0)
        return 0;
    return (64 - offset) / sizeof(T);
}

/* The channels of the (N, C) strip starting at channel j0: the lead strip, then STRIP
 * at a time. */
static inline size_t TWIN(strip_width)(size_t c, size_t j0, size_t lead)
{
    if (j0 == 0 && lead)
        return lead;
    return c - j0 < STRIP ? c - j0 : STRIP;
}
/* Independent accumulators of the (N, C, inner) reductions: 64 bytes. */
#define LANES (64 / sizeof(T))

/* (N, C, inner) layout, a kernel reading `arrays` arrays: the channels of a group, or 0
 * when the inputs are small enough to be in cache (see RS_CACHED_BYTES). */
static size_t TWIN(runs_group)(size_t n, size_t c, size_t inner, size_t arrays)
{
    const size_t bytes = n * inner * arrays * sizeof(T), run = inner * sizeof(T);
    if (bytes * c < RS_CACHED_BYTES)
        return 0;
    const size_t fit = RS_GROUP_BYTES / bytes, span = (RS_SPAN_BYTES + run - 1) / run;
    const size_t g = fit > span ? fit : span;
    return g > RS_GROUP_MAX ? RS_GROUP_MAX : g;
}

/* The partial sums of one channel, (N, C, inner) layout: LANES lanes for the whole
 * groups of LANES values of a span, one more for the rest, in the storage type. */
typedef struct {
    T s[LANES], q[LANES];
    T ts, tq;
} TWIN(partial);

/* *s += the lanes of p in order, then its rest (same for *q); clears p. */
static inline void TWIN(partial_flush)(TWIN(partial) *p, double *s, double *q)
{
    for (size_t l = 0; l < LANES; ++l) {
        *s += (double)p->s[l];
        *q += (double)p->q[l];
        p->s[l] = 0;
        p->q[l] = 0;
    }
    *s += (double)p->ts;
    *q += (double)p->tq;
    p->ts = 0;
    p->tq = 0;
}

/* ps[j] += the sum of x - k[j] over four rows of a strip, pq[j] += that of its square; the
 * rows start at x, x + step, x + 2 step and x + 3 step. */
static RS_INLINE void TWIN(shifted_sweep4)(size_t nb, size_t step, const T *restrict x,
                                           const T *restrict k, T *restrict ps,
                                           T *restrict pq)
{
    const T *restrict r1 = x + step, *restrict r2 = r1 + step, *restrict r3 = r2 + step;
    for (size_t j = 0; j < nb; ++j) {
        const T d0 = x[j] - k[j], d1 = r1[j] - k[j];
        const T d2 = r2[j] - k[j], d3 = r3[j] - k[j];
        ps[j] += (d0 + d1) + (d2 + d3);
        pq[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
    }
}

/* s[j] += ps[j], q[j] += pq[j] (in double), then clears ps and pq. */
static inline void TWIN(flush_rows)(size_t nb, T *restrict ps, T *restrict pq,
                                    double *restrict s, double *restrict q)
{
    for (size_t j = 0; j < nb; ++j) {
        s[j] += (double)ps[j];
        q[j] += (double)pq[j];
        ps[j] = 0;
        pq[j] = 0;
    }
}

/* (N, C) layout, strip of nb channels starting at x (row stride c): shifted sums
 * s[j] = sum(x - k[j]), q[j] = sum((x - k[j])**2) over the n rows. Four rows per sweep;
 * ps, pq (nb each) hold the partial sums of RS_FLUSH rows. Inputs of RS_STREAM_BYTES and
 * more come from memory, where one read stream is latency-bound on a core: there a sweep
 * takes rows n/4 apart (i, i + n/4, i + n/2, i + 3n/4, then the rows after 4 * (n/4)), so
 * memory sees four streams; at (4096, 4096) this pass ran about 1.3x as fast and the
 * forward 1.1-1.15x. The order depends on the input's size, never on the instruction set. */
static void TWIN(shifted_sums_rows)(size_t n, size_t c, size_t nb, const T *restrict x,
                                    const T *restrict k, double *restrict s,
                                    double *restrict q, T *restrict ps, T *restrict pq)
{
    for (size_t j = 0; j < nb; ++j) {
        s[j] = 0.0;
        q[j] = 0.0;
        ps[j] = 0;
        pq[j] = 0;
    }
    const size_t quarter = n * c * sizeof(T) >= RS_STREAM_BYTES ? n / 4 : 0;
    for (size_t i0 = 0; i0 < quarter; i0 += RS_FLUSH / 4) {
        const size_t i1 = quarter - i0 < RS_FLUSH / 4 ? quarter : i0 + RS_FLUSH / 4;
        for (size_t i = i0; i < i1; ++i)
            TWIN(shifted_sweep4)(nb, quarter * c, x + i * c, k, ps, pq);
        TWIN(flush_rows)(nb, ps, pq, s, q);
    }
    for (size_t i0 = 4 * quarter; i0 < n; i0 += RS_FLUSH) {
        const size_t i1 = n - i0 < RS_FLUSH ? n : i0 + RS_FLUSH;
        size_t i = i0;
        for (; i + 4 <= i1; i += 4)
            TWIN(shifted_sweep4)(nb, c, x + i * c, k, ps, pq);
        for (; i < i1; ++i) {
            const T *restrict r0 = x + i * c;
            for (size_t j = 0; j < nb; ++j) {
                const T d0 = r0[j] - k[j];
                ps[j] += d0;
                pq[j] += d0 * d0;
            }
        }
        TWIN(flush_rows)(nb, ps, pq, s, q);
    }
}

/* (N, C, inner) layout, one channel: its n runs of inner values start at x, stride
 * apart. Shifted sums *s = sum(x - k), *q = sum((x - k)**2). */
static void TWIN(shifted_sums_runs)(size_t n, size_t stride, size_t inner,
                                    const T *restrict x, T k, double *s, double *q)
{
    enum { W = LANES };
    T ps[W] = {0}, pq[W] = {0};
    T ts = 0, tq = 0;
    double ss = 0.0, qq = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) {
        const T *restrict run = x + i * stride;
        for (size_t t0 = 0; t0 < inner;) {
            const size_t t1 = inner - t0 < RS_RUN ? inner : t0 + RS_RUN;
            size_t t = t0;
            for (; t + W <= t1; t += W) {
                #pragma omp simd
                for (size_t l = 0; l < W; ++l) {
                    const T d = run[t + l] - k;
                    ps[l] += d;
                    pq[l] += d * d;
                }
            }
            for (; t < t1; ++t) {
                const T d = run[t] - k;
                ts += d;
                tq += d * d;
            }
            count += t1 - t0;
            t0 = t1;
            if (count >= RS_RUN || (i + 1 == n && t0 == inner)) {
                for (size_t l = 0; l < W; ++l) {
                    ss += (double)ps[l];
                    qq += (double)pq[l];
                    ps[l] = 0;
                    pq[l] = 0;
                }
                ss += (double)ts;
                qq += (double)tq;
                ts = 0;
                tq = 0;
                count = 0;
            }
        }
    }
    *s = ss;
    *q = qq;
}

/* finish_stats for channel j; running: whether to update the running statistics. */
static RS_INLINE void TWIN(finish_one)(size_t j, double inv_m, double unbias, double mom,
                                       const T *restrict k, const double *restrict s,
                                       const double *restrict q, const T *restrict gamma,
                                       const T *restrict beta, T eps,
                                       T *restrict running_mean, T *restrict running_var,
                                       T *restrict mean, T *restrict invstd, T *restrict a,
                                       T *restrict b2, const int running)
{
    const double ms = s[j] * inv_m;
    double var = q[j] * inv_m - ms * ms;
    var = var < 0.0 ? 0.0 : var; /* rounding can make it negative; NaN stays NaN */
    const double mu = (double)k[j] + ms;
    const double is = 1.0 / sqrt(var + (double)eps);
    const double aj = (double)gamma[j] * is;
    mean[j] = (T)mu;
    invstd[j] = (T)is;
    a[j] = (T)aj;
    b2[j] = (T)((double)beta[j] - ms * aj);
    if (running) {
        running_mean[j] = (T)((1.0 - mom) * (double)running_mean[j] + mom * mu);
        running_var[j] = (T)((1.0 - mom) * (double)running_var[j] + mom * var * unbias);
    }
}

/* From the shifted sums of nb channels over m values each: mean, invstd, the running
 * statistics when given, and the coefficients of y = (x - k) * a + b2 (all offset to the
 * strip): a = gamma * invstd, b2 = beta - (mean - k) * a. The shift k, not the rounded
 * mean, is subtracted from x, so y keeps full precision when |mean| >> std. One loop for
 * each case of the running statistics: with the test inside, GCC left the loop scalar, and
 * its square roots and divisions took 40% of a (64, 128) forward. */
static void TWIN(finish_stats)(size_t nb, double m, const T *restrict k,
                               const double *restrict s, const double *restrict q,
                               const T *restrict gamma, const T *restrict beta, T eps,
                               T momentum, T *restrict running_mean, T *restrict running_var,
                               T *restrict mean, T *restrict invstd, T *restrict a,
                               T *restrict b2)
{
    const double inv_m = 1.0 / m, unbias = m / (m - 1.0), mom = (double)momentum;
    if (running_mean && running_var)
        for (size_t j = 0; j < nb; ++j)
            TWIN(finish_one)(j, inv_m, unbias, mom, k, s, q, gamma, beta, eps, running_mean,
                             running_var, mean, invstd, a, b2, 1);
    else
        for (size_t j = 0; j < nb; ++j)
            TWIN(finish_one)(j, inv_m, unbias, mom, k, s, q, gamma, beta, eps, NULL, NULL,
                             mean, invstd, a, b2, 0);
}

/* v, or relu(v) = (v < 0 ? 0 : v) when relu (NaN stays NaN, as in max(v, 0)). */
static inline T TWIN(clamp)(T v, const int relu)
{
    return relu && v < 0 ? (T)0 : v;
}

/* Rows of an (N, C) input that the elementwise passes sweep at a time, each per-channel
 * coefficient loaded once for all of them: fewer loads per value, and at 4096 channels the
 * coefficient arrays (3 or 4 of up to RS_STRIP_BYTES) outgrow L1. From memory, four rows a
 * sweep made the forward's pass at (4096, 4096) 7-15% faster than two, at (2048, 2048) 5-13%
 * (eight were several times slower). In cache, more rows bought nothing or cost up to 10% (at
 * 1024x1024), so inputs between RS_CACHED_BYTES and RS_STREAM_BYTES go in_cache_rows at a
 * time (two in the forward, one in the backward). The same operations on each value whatever
 * the count: the same bits. */
static inline size_t TWIN(sweep_rows)(size_t n, size_t c, size_t in_cache_rows)
{
    const size_t bytes = n * c * sizeof(T);
    return bytes >= RS_STREAM_BYTES ? 4 : bytes >= RS_CACHED_BYTES ? in_cache_rows : 1;
}

/* y = (x - k[j]) * a[j] + b[j] (then relu when relu) over `rows` rows of a strip of nb
 * channels, (N, C) layout, row r at x + r * step (and y + r * step); rows is a constant
 * where this is inlined. */
static RS_INLINE void TWIN(affine_sweep)(size_t rows, size_t step, size_t nb,
                                         const T *restrict x, const T *restrict k,
                                         const T *restrict a, const T *restrict b,
                                         T *restrict y, const int relu)
{
    for (size_t j = 0; j < nb; ++j) {
        const T kj = k[j], aj = a[j], bj = b[j];
        #pragma GCC unroll 4
        for (size_t r = 0; r < rows; ++r)
            y[r * step + j] = TWIN(clamp)((x[r * step + j] - kj) * aj + bj, relu);
    }
}

/* y = (x - k[j]) * a[j] + b[j] (then relu when relu) over a strip of nb channels, (N, C)
 * layout. */
static inline void TWIN(affine_rows_body)(size_t n, size_t c, size_t nb, const T *restrict x,
                                          const T *restrict k, const T *restrict a,
                                          const T *restrict b, T *restrict y, const int relu)
{
    const size_t rows = TWIN(sweep_rows)(n, c, 2);
    size_t i = 0;
    if (rows == 4) {
        /* From memory, rows n/4 apart, as in shifted_sums_rows: four streams. */
        const size_t quarter = n / 4;
        for (; i < quarter; ++i)
            TWIN(affine_sweep)(4, quarter * c, nb, x + i * c, k, a, b, y + i * c, relu);
        i = 4 * quarter;
    }
    else if (rows == 2)
        for (; i + 2 <= n; i += 2)
            TWIN(affine_sweep)(2, c, nb, x + i * c, k, a, b, y + i * c, relu);
    for (; i < n; ++i)
        TWIN(affine_sweep)(1, c, nb, x + i * c, k, a, b, y + i * c, relu);
}

static void TWIN(affine_rows)(size_t n, size_t c, size_t nb, const T *restrict x,
                              const T *restrict k, const T *restrict a,
                              const T *restrict b, T *restrict y)
{
    TWIN(affine_rows_body)(n, c, nb, x, k, a, b, y, 0);
}

static void TWIN(affine_relu_rows)(size_t n, size_t c, size_t nb, const T *restrict x,
                                   const T *restrict k, const T *restrict a,
                                   const T *restrict b, T *restrict y)
{
    TWIN(affine_rows_body)(n, c, nb, x, k, a, b, y, 1);
}

/* y = (x - k) * a + b (then relu when relu) over one channel's n runs, (N, C, inner)
 * layout. */
static inline void TWIN(affine_runs_body)(size_t n, size_t stride, size_t inner,
                                          const T *restrict x, T k, T a, T b, T *restrict y,
                                          const int relu)
{
    for (size_t i = 0; i < n; ++i) {
        const T *restrict xr = x + i * stride;
        T *restrict yr = y + i * stride;
        for (size_t t = 0; t < inner; ++t)
            yr[t] = TWIN(clamp)((xr[t] - k) * a + b, relu);
    }
}

static void TWIN(affine_runs)(size_t n, size_t stride, size_t inner,
                              const T *restrict x, T k, T a, T b, T *restrict y)
{
    TWIN(affine_runs_body)(n, stride, inner, x, k, a, b, y, 0);
}

static void TWIN(affine_relu_runs)(size_t n, size_t stride, size_t inner,
                                   const T *restrict x, T k, T a, T b, T *restrict y)
{
    TWIN(affine_runs_body)(n, stride, inner, x, k, a, b, y, 1);
}

/* (N, C, inner) layout, len values of one sample's run (or a part of it): when sums, adds
 * x - k and (x - k)**2 to p (whole groups of LANES values into its lanes, the rest into
 * ts, tq), fetching the values `ahead` further; when apply, writes
 * out = (xa - ka) * a + b (then relu when relu) for another channel. Both in one loop, so
 * the apply's stores overlap the sums' loads. */
static RS_INLINE void TWIN(stats_run)(size_t len, const T *restrict x, T k,
                                      TWIN(partial) *restrict p, size_t ahead,
                                      const T *restrict xa, T ka, T a, T b, T *restrict out,
                                      const int sums, const int apply, const int relu)
{
    enum { W = LANES };
    size_t t = 0;
    for (; t + W <= len; t += W) {
        if (sums) {
            RS_PREFETCH(x + ahead + t);
            #pragma omp simd
            for (size_t l = 0; l < W; ++l) {
                const T d = x[t + l] - k;
                p->s[l] += d;
                p->q[l] += d * d;
            }
        }
        if (apply) {
            #pragma omp simd
            for (size_t l = t; l < t + W; ++l)
                out[l] = TWIN(clamp)((xa[l] - ka) * a + b, relu);
        }
    }
    for (; t < len; ++t) {
        if (sums) {
            const T d = x[t] - k;
            p->ts += d;
            p->tq += d * d;
        }
        if (apply)
            out[t] = TWIN(clamp)((xa[t] - ka) * a + b, relu);
    }
}

/* (N, C, inner) layout, one stage of the training forward: in one sweep over the samples,
 * the shifted sums s[j] = sum(x - k), q[j] = sum((x - k)**2) of the ns channels js + j,
 * and y = (x - k) * a[j] + b[j] (then relu when relu) for the na channels ja + j, each
 * channel shifted by its first value k (ns, na <= RS_GROUP_MAX; either may be 0). A
 * sample's runs of a group are one contiguous span. Each channel's partial sums are
 * flushed into double every RS_RUN values. */
static RS_INLINE void TWIN(stats_stage_body)(size_t n, size_t stride, size_t inner,
                                             const T *restrict x, size_t js, size_t ns,
                                             double *restrict s, double *restrict q,
                                             size_t ja, size_t na, const T *restrict a,
                                             const T *restrict b, T *restrict y,
                                             const int relu)
{
    TWIN(partial) p[RS_GROUP_MAX];
    for (size_t j = 0; j < ns; ++j) {
        p[j] = (TWIN(partial)){{0}, {0}, 0, 0};
        s[j] = 0.0;
        q[j] = 0.0;
    }
    const size_t nj = ns > na ? ns : na;
    size_t count = 0;  /* values in the partial sums, the same for every channel */
    for (size_t i = 0; i < n; ++i) {
        const size_t ahead = i + 1 < n ? stride : 0;
        size_t next = count;
        for (size_t j = 0; j < nj; ++j) {
            const size_t s0 = i * stride + (js + j) * inner;
            const size_t a0 = i * stride + (ja + j) * inner;
            const T ks = j < ns ? x[(js + j) * inner] : 0;
            const T ka = j < na ? x[(ja + j) * inner] : 0;
            const T aj = j < na ? a[j] : 0, bj = j < na ? b[j] : 0;
            size_t counted = count;
            for (size_t t0 = 0; t0 < inner;) {
                const size_t t1 = inner - t0 < RS_RUN ? inner : t0 + RS_RUN;
                const size_t so = s0 + t0, ao = a0 + t0;
                if (j < ns && j < na)
                    TWIN(stats_run)(t1 - t0, x + so, ks, &p[j], ahead, x + ao, ka, aj, bj,
                                    y + ao, 1, 1, relu);
                else if (j < ns)
                    TWIN(stats_run)(t1 - t0, x + so, ks, &p[j], ahead, x, 0, 0, 0, y, 1, 0,
                                    relu);
                else
                    TWIN(stats_run)(t1 - t0, x, 0, p, 0, x + ao, ka, aj, bj, y + ao, 0, 1,
                                    relu);
                counted += t1 - t0;
                t0 = t1;
                if (j < ns && (counted >= RS_RUN || (i + 1 == n && t0 == inner))) {
                    TWIN(partial_flush)(&p[j], &s[j], &q[j]);
                    counted = 0;
                }
            }
            if (j < ns)
                next = counted;
        }
        count = next;
    }
}

static void TWIN(stats_stage)(size_t n, size_t stride, size_t inner, const T *restrict x,
                              size_t js, size_t ns, double *restrict s, double *restrict q,
                              size_t ja, size_t na, const T *restrict a, const T *restrict b,
                              T *restrict y)
{
    TWIN(stats_stage_body)(n, stride, inner, x, js, ns, s, q, ja, na, a, b, y, 0);
}

static void TWIN(stats_stage_relu)(size_t n, size_t stride, size_t inner,
                                   const T *restrict x, size_t js, size_t ns,
                                   double *restrict s, double *restrict q, size_t ja,
                                   size_t na, const T *restrict a, const T *restrict b,
                                   T *restrict y)
{
    TWIN(stats_stage_body)(n, stride, inner, x, js, ns, s, q, ja, na, a, b, y, 1);
}

/* The training forward, followed by a ReLU when relu. */
static inline void TWIN(forward)(size_t n, size_t c, size_t inner, const T *restrict x,
                                 const T *restrict gamma, const T *restrict beta, T eps,
                                 T momentum, T *restrict running_mean,
                                 T *restrict running_var, T *restrict y, T *restrict mean,
                                 T *restrict invstd, const int relu)
{
    const double m = (double)(n * inner);
    const int running = running_mean && running_var;
    if (inner > 1) {
        const size_t stride = c * inner, group = TWIN(runs_group)(n, c, inner, 1);
        if (group == 0) {
            /* Small data, likely in cache: one channel at a time, summed then applied. */
            for (size_t j = 0; j < c; ++j) {
                const T *xj = x + j * inner;
                const T k = xj[0];
                double s, q;
                T a, b2;
                TWIN(shifted_sums_runs)(n, stride, inner, xj, k, &s, &q);
                TWIN(finish_stats)(1, m, &k, &s, &q, gamma + j, beta + j, eps, momentum,
                                   running ? running_mean + j : NULL,
                                   running ? running_var + j : NULL, mean + j, invstd + j,
                                   &a, &b2);
                if (relu)
                    TWIN(affine_relu_runs)(n, stride, inner, xj, k, a, b2, y + j * inner);
                else
                    TWIN(affine_runs)(n, stride, inner, xj, k, a, b2, y + j * inner);
            }
            return;
        }
        /* Channels in groups: the stage that sums a group applies the group before it,
         * with the coefficients a, b2 the previous stage left. */
        double s[RS_GROUP_MAX], q[RS_GROUP_MAX];
        T k[RS_GROUP_MAX], a[RS_GROUP_MAX], b2[RS_GROUP_MAX];
        size_t ja = 0, na = 0;
        for (size_t js = 0;; js += group) {
            const size_t ns = js >= c ? 0 : c - js < group ? c - js : group;
            if (relu)
                TWIN(stats_stage_relu)(n, stride, inner, x, js, ns, s, q, ja, na, a, b2, y);
            else
                TWIN(stats_stage)(n, stride, inner, x, js, ns, s, q, ja, na, a, b2, y);
            if (ns == 0)
                return;
            for (size_t j = 0; j < ns; ++j)
                k[j] = x[(js + j) * inner];
            TWIN(finish_stats)(ns, m, k, s, q, gamma + js, beta + js, eps, momentum,
                               running ? running_mean + js : NULL,
                               running ? running_var + js : NULL, mean + js, invstd + js, a,
                               b2);
            ja = js;
            na = ns;
        }
    }
    /* Per channel of a strip: shifted sums (double) and their partial sums (T), which
     * then hold the coefficients a and b2. The shift k is the strip's first row. */
    double s[STRIP], q[STRIP];
    T ps[STRIP], pq[STRIP];
    const size_t lead = TWIN(strip_lead)(n, c, x);
    for (size_t j0 = 0, nb; j0 < c; j0 += nb) {
        nb = TWIN(strip_width)(c, j0, lead);
        const T *k = x + j0;
        TWIN(shifted_sums_rows)(n, c, nb, x + j0, k, s, q, ps, pq);
        TWIN(finish_stats)(nb, m, k, s, q, gamma + j0, beta + j0, eps, momentum,
                           running ? running_mean + j0 : NULL,
                           running ? running_var + j0 : NULL, mean + j0, invstd + j0,
                           ps, pq);
        if (relu)
            TWIN(affine_relu_rows)(n, c, nb, x + j0, k, ps, pq, y + j0);
        else
            TWIN(affine_rows)(n, c, nb, x + j0, k, ps, pq, y + j0);
    }
}

static void TWIN(rs_batchnorm_forward)(size_t n, size_t c, size_t inner,
                                       const T *restrict x, const T *restrict gamma,
                                       const T *restrict beta, T eps, T momentum,
                                       T *restrict running_mean, T *restrict running_var,
                                       T *restrict y, T *restrict mean, T *restrict invstd)
{
    TWIN(forward)(n, c, inner, x, gamma, beta, eps, momentum, running_mean, running_var, y,
                  mean, invstd, 0);
}

static void TWIN(rs_batchnorm_relu_forward)(size_t n, size_t c, size_t inner,
                                            const T *restrict x, const T *restrict gamma,
                                            const T *restrict beta, T eps, T momentum,
                                            T *restrict running_mean,
                                            T *restrict running_var, T *restrict y,
                                            T *restrict mean, T *restrict invstd)
{
    TWIN(forward)(n, c, inner, x, gamma, beta, eps, momentum, running_mean, running_var, y,
                  mean, invstd, 1);
}

/* The inference forward, followed by a ReLU when relu. */
static inline void TWIN(inference)(size_t n, size_t c, size_t inner, const T *restrict x,
                                   const T *restrict gamma, const T *restrict beta,
                                   const T *restrict running_mean,
                                   const T *restrict running_var, T eps, T *restrict y,
                                   const int relu)
{
    T a[STRIP];
    const size_t lead = inner == 1 ? TWIN(strip_lead)(n, c, x) : 0;
    for (size_t j0 = 0, nb; j0 < c; j0 += nb) {
        nb = TWIN(strip_width)(c, j0, lead);
        for (size_t j = 0; j < nb; ++j)
            a[j] = (T)((double)gamma[j0 + j] /
                       sqrt((double)running_var[j0 + j] + (double)eps));
        if (inner == 1) {
            if (relu)
                TWIN(affine_relu_rows)(n, c, nb, x + j0, running_mean + j0, a, beta + j0,
                                       y + j0);
            else
                TWIN(affine_rows)(n, c, nb, x + j0, running_mean + j0, a, beta + j0, y + j0);
            continue;
        }
        for (size_t j = 0; j < nb; ++j) {
            const size_t off = (j0 + j) * inner;
            if (relu)
                TWIN(affine_relu_runs)(n, c * inner, inner, x + off, running_mean[j0 + j],
                                       a[j], beta[j0 + j], y + off);
            else
                TWIN(affine_runs)(n, c * inner, inner, x + off, running_mean[j0 + j], a[j],
                                  beta[j0 + j], y + off);
        }
    }
}

static void TWIN(rs_batchnorm_inference)(size_t n, size_t c, size_t inner,
                                         const T *restrict x, const T *restrict gamma,
                                         const T *restrict beta,
                                         const T *restrict running_mean,
                                         const T *restrict running_var, T eps,
                                         T *restrict y)
{
    TWIN(inference)(n, c, inner, x, gamma, beta, running_mean, running_var, eps, y, 0);
}

static void TWIN(rs_batchnorm_relu_inference)(size_t n, size_t c, size_t inner,
                                              const T *restrict x, const T *restrict gamma,
                                              const T *restrict beta,
                                              const T *restrict running_mean,
                                              const T *restrict running_var, T eps,
                                              T *restrict y)
{
    TWIN(inference)(n, c, inner, x, gamma, beta, running_mean, running_var, eps, y, 1);
}

/* The gradient the batchnorm backward sees: dy, or dy masked by the ReLU after the
 * batchnorm when relu (y > 0 ? dy : 0, y the ReLU's output). */
static inline T TWIN(masked)(T dy, T y, const int relu)
{
    return relu && !(y > 0) ? (T)0 : dy;
}

/* (N, C) layout, strip of nb channels: sd[j] = sum(g), sdx[j] = sum(g * (x - mu[j])) with
 * g = masked(dy, y). Two rows per sweep; four for inputs of RS_STREAM_BYTES and more, which
 * come from memory, where each channel's partial sums and mean (three arrays of up to
 * RS_STRIP_BYTES, over L1) loaded once per four rows made the (4096, 4096) backward 8-14%
 * faster. The order of the sums depends on the input's size, never on the instruction set.
 * ps, px (nb each) hold the partial sums. y is only read when relu (the plain kernel passes
 * dy in its place). */
static inline void TWIN(grad_sums_rows_body)(size_t n, size_t c, size_t nb,
                                             const T *restrict dy, const T *restrict y,
                                             const T *restrict x, const T *restrict mu,
                                             double *restrict sd, double *restrict sdx,
                                             T *restrict ps, T *restrict px, const int relu)
{
    for (size_t j = 0; j < nb; ++j) {
        sd[j] = 0.0;
        sdx[j] = 0.0;
    }
    for (size_t i0 = 0; i0 < n; i0 += RS_FLUSH) {
        const size_t i1 = n - i0 < RS_FLUSH ? n : i0 + RS_FLUSH;
        for (size_t j = 0; j < nb; ++j) {
            ps[j] = 0;
            px[j] = 0;
        }
        size_t i = i0;
        if (n * c * sizeof(T) >= RS_STREAM_BYTES)
            for (; i + 4 <= i1; i += 4) {
                const T *restrict g0 = dy + i * c, *restrict y0 = y + i * c;
                const T *restrict x0 = x + i * c;
                for (size_t j = 0; j < nb; ++j) {
                    const T m = mu[j];
                    const T d0 = TWIN(masked)(g0[j], y0[j], relu);
                    const T d1 = TWIN(masked)(g0[j + c], y0[j + c], relu);
                    const T d2 = TWIN(masked)(g0[j + 2 * c], y0[j + 2 * c], relu);
                    const T d3 = TWIN(masked)(g0[j + 3 * c], y0[j + 3 * c], relu);
                    ps[j] += (d0 + d1) + (d2 + d3);
                    px[j] += (d0 * (x0[j] - m) + d1 * (x0[j + c] - m)) +
                             (d2 * (x0[j + 2 * c] - m) + d3 * (x0[j + 3 * c] - m));
                }
            }
        for (; i + 2 <= i1; i += 2) {
            const T *restrict g0 = dy + i * c, *restrict g1 = g0 + c;
            const T *restrict y0 = y + i * c, *restrict y1 = y0 + c;
            const T *restrict x0 = x + i * c, *restrict x1 = x0 + c;
            for (size_t j = 0; j < nb; ++j) {
                const T d0 = TWIN(masked)(g0[j], y0[j], relu);
                const T d1 = TWIN(masked)(g1[j], y1[j], relu);
                ps[j] += d0 + d1;
                px[j] += d0 * (x0[j] - mu[j]) + d1 * (x1[j] - mu[j]);
            }
        }
        for (; i < i1; ++i) {
            const T *restrict g0 = dy + i * c, *restrict y0 = y + i * c;
            const T *restrict x0 = x + i * c;
            for (size_t j = 0; j < nb; ++j) {
                const T d0 = TWIN(masked)(g0[j], y0[j], relu);
                ps[j] += d0;
                px[j] += d0 * (x0[j] - mu[j]);
            }
        }
        for (size_t j = 0; j < nb; ++j) {
            sd[j] += (double)ps[j];
            sdx[j] += (double)px[j];
        }
    }
}

static void TWIN(grad_sums_rows)(size_t n, size_t c, size_t nb, const T *restrict dy,
                                 const T *restrict x, const T *restrict mu,
                                 double *restrict sd, double *restrict sdx,
                                 T *restrict ps, T *restrict px)
{
    TWIN(grad_sums_rows_body)(n, c, nb, dy, dy, x, mu, sd, sdx, ps, px, 0);
}

static void TWIN(grad_sums_relu_rows)(size_t n, size_t c, size_t nb, const T *restrict dy,
                                      const T *restrict y, const T *restrict x,
                                      const T *restrict mu, double *restrict sd,
                                      double *restrict sdx, T *restrict ps, T *restrict px)
{
    TWIN(grad_sums_rows_body)(n, c, nb, dy, y, x, mu, sd, sdx, ps, px, 1);
}

/* (N, C, inner) layout, one channel: *sd = sum(g), *sdx = sum(g * (x - mu)) with
 * g = masked(dy, y); y is only read when relu. */
static inline void TWIN(grad_sums_runs_body)(size_t n, size_t stride, size_t inner,
                                             const T *restrict dy, const T *restrict y,
                                             const T *restrict x, T mu, double *sd,
                                             double *sdx, const int relu)
{
    enum { W = LANES };
    T ps[W] = {0}, px[W] = {0};
    T ts = 0, tx = 0;
    double ss = 0.0, sx = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) {
        const T *restrict g = dy + i * stride;
        const T *restrict yr = y + i * stride;
        const T *restrict xr = x + i * stride;
        for (size_t t0 = 0; t0 < inner;) {
            const size_t t1 = inner - t0 < RS_RUN ? inner : t0 + RS_RUN;
            size_t t = t0;
            for (; t + W <= t1; t += W) {
                #pragma omp simd
                for (size_t l = 0; l < W; ++l) {
                    const T d = TWIN(masked)(g[t + l], yr[t + l], relu);
                    ps[l] += d;
                    px[l] += d * (xr[t + l] - mu);
                }
            }
            for (; t < t1; ++t) {
                const T d = TWIN(masked)(g[t], yr[t], relu);
                ts += d;
                tx += d * (xr[t] - mu);
            }
            count += t1 - t0;
            t0 = t1;
            if (count >= RS_RUN || (i + 1 == n && t0 == inner)) {
                for (size_t l = 0; l < W; ++l) {
                    ss += (double)ps[l];
                    sx += (double)px[l];
                    ps[l] = 0;
                    px[l] = 0;
                }
                ss += (double)ts;
                sx += (double)tx;
                ts = 0;
                tx = 0;
                count = 0;
            }
        }
    }
    *sd = ss;
    *sdx = sx;
}

static void TWIN(grad_sums_runs)(size_t n, size_t stride, size_t inner,
                                 const T *restrict dy, const T *restrict x, T mu,
                                 double *sd, double *sdx)
{
    TWIN(grad_sums_runs_body)(n, stride, inner, dy, dy, x, mu, sd, sdx, 0);
}

static void TWIN(grad_sums_relu_runs)(size_t n, size_t stride, size_t inner,
                                      const T *restrict dy, const T *restrict y,
                                      const T *restrict x, T mu, double *sd, double *sdx)
{
    TWIN(grad_sums_runs_body)(n, stride, inner, dy, y, x, mu, sd, sdx, 1);
}

/* dgamma, dbeta and the coefficients of dx = A * (dy - dbeta / m) + B * (x - mean) for
 * nb channels (all offset to the strip): A = gamma * invstd,
 * B = -A * invstd**2 * sdx / m. A and B may take the place of the partial sums. */
static void TWIN(grad_coefs)(size_t nb, double m, const double *restrict sd,
                             const double *restrict sdx, const T *restrict gamma,
                             const T *restrict invstd, T *restrict dgamma,
                             T *restrict dbeta, T *restrict A, T *restrict B)
{
    const double inv_m = 1.0 / m;
    for (size_t j = 0; j < nb; ++j) {
        const double is = (double)invstd[j];
        const double aj = (double)gamma[j] * is;
        dbeta[j] = (T)sd[j];
        dgamma[j] = (T)(sdx[j] * is);
        A[j] = (T)aj;
        B[j] = (T)(-aj * is * is * sdx[j] * inv_m);
    }
}

/* dx = A[j] * (g - md[j]) + B[j] * (x - mu[j]) with g = masked(dy, y), over `rows` rows of
 * a strip of nb channels, (N, C) layout (rows a constant where this is inlined), md[j] the
 * mean of g (dbeta[j] * inv_m, made once per strip rather than once per row); y is only
 * read when relu. */
static RS_INLINE void TWIN(grad_apply_sweep)(size_t rows, size_t c, size_t nb,
                                             const T *restrict dy, const T *restrict y,
                                             const T *restrict x, const T *restrict mu,
                                             const T *restrict A, const T *restrict B,
                                             const T *restrict md, T *restrict dx,
                                             const int relu)
{
    for (size_t j = 0; j < nb; ++j) {
        const T Aj = A[j], Bj = B[j], mdj = md[j], muj = mu[j];
        #pragma GCC unroll 4
        for (size_t r = 0; r < rows; ++r) {
            const size_t v = r * c + j;
            dx[v] = Aj * (TWIN(masked)(dy[v], y[v], relu) - mdj) + Bj * (x[v] - muj);
        }
    }
}

/* grad_apply_sweep over the n rows of a strip, sweep_rows at a time. */
static inline void TWIN(grad_apply_rows_body)(size_t n, size_t c, size_t nb,
                                              const T *restrict dy, const T *restrict y,
                                              const T *restrict x, const T *restrict mu,
                                              const T *restrict A, const T *restrict B,
                                              const T *restrict md, T *restrict dx,
                                              const int relu)
{
    size_t i = 0;
    if (TWIN(sweep_rows)(n, c, 1) == 4 && nb * sizeof(T) > RS_L1_COEF_BYTES)
        for (; i + 4 <= n; i += 4)
            TWIN(grad_apply_sweep)(4, c, nb, dy + i * c, y + i * c, x + i * c, mu, A, B, md,
                                   dx + i * c, relu);
    for (; i < n; ++i)
        TWIN(grad_apply_sweep)(1, c, nb, dy + i * c, y + i * c, x + i * c, mu, A, B, md,
                               dx + i * c, relu);
}

static void TWIN(grad_apply_rows)(size_t n, size_t c, size_t nb, const T *restrict dy,
                                  const T *restrict x, const T *restrict mu,
                                  const T *restrict A, const T *restrict B,
                                  const T *restrict md, T *restrict dx)
{
    TWIN(grad_apply_rows_body)(n, c, nb, dy, dy, x, mu, A, B, md, dx, 0);
}

static void TWIN(grad_apply_relu_rows)(size_t n, size_t c, size_t nb, const T *restrict dy,
                                       const T *restrict y, const T *restrict x,
                                       const T *restrict mu, const T *restrict A,
                                       const T *restrict B, const T *restrict md,
                                       T *restrict dx)
{
    TWIN(grad_apply_rows_body)(n, c, nb, dy, y, x, mu, A, B, md, dx, 1);
}

/* dx = A * (g - mdy) + B * (x - mu) with g = masked(dy, y), over one channel's n runs,
 * (N, C, inner) layout; y is only read when relu. */
static inline void TWIN(grad_apply_runs_body)(size_t n, size_t stride, size_t inner,
                                              const T *restrict dy, const T *restrict y,
                                              const T *restrict x, T mu, T A, T B, T mdy,
                                              T *restrict dx, const int relu)
{
    for (size_t i = 0; i < n; ++i) {
        const T *restrict g = dy + i * stride;
        const T *restrict yr = y + i * stride;
        const T *restrict xr = x + i * stride;
        T *restrict out = dx + i * stride;
        for (size_t t = 0; t < inner; ++t)
            out[t] = A * (TWIN(masked)(g[t], yr[t], relu) - mdy) + B * (xr[t] - mu);
    }
}

static void TWIN(grad_apply_runs)(size_t n, size_t stride, size_t inner,
                                  const T *restrict dy, const T *restrict x, T mu, T A,
                                  T B, T mdy, T *restrict dx)
{
    TWIN(grad_apply_runs_body)(n, stride, inner, dy, dy, x, mu, A, B, mdy, dx, 0);
}

static void TWIN(grad_apply_relu_runs)(size_t n, size_t stride, size_t inner,
                                       const T *restrict dy, const T *restrict y,
                                       const T *restrict x, T mu, T A, T B, T mdy,
                                       T *restrict dx)
{
    TWIN(grad_apply_runs_body)(n, stride, inner, dy, y, x, mu, A, B, mdy, dx, 1);
}

/* (N, C, inner) layout, len values of one sample's run (or a part of it): when sums, adds
 * g = masked(dy, y) and g * (x - mu) to p (whole groups of LANES values into its lanes, the
 * rest into ts, tq), fetching the values `ahead` further; when apply, writes
 * out = a * (ga - md) + b * (xa - mua) with ga = masked(dya, ya), for another channel.
 * Both in one loop, so the apply's stores overlap the sums' loads. y, ya are only read
 * when relu. */
static RS_INLINE void TWIN(grad_run)(size_t len, const T *restrict dy, const T *restrict y,
                                     const T *restrict x, T mu, TWIN(partial) *restrict p,
                                     size_t ahead, const T *restrict dya,
                                     const T *restrict ya, const T *restrict xa, T mua, T a,
                                     T b, T md, T *restrict out, const int sums,
                                     const int apply, const int relu)
{
    enum { W = LANES };
    size_t t = 0;
    for (; t + W <= len; t += W) {
        if (sums) {
            RS_PREFETCH(dy + ahead + t);
            RS_PREFETCH(x + ahead + t);
            if (relu)
                RS_PREFETCH(y + ahead + t);
            #pragma omp simd
            for (size_t l = 0; l < W; ++l) {
                const T d = TWIN(masked)(dy[t + l], y[t + l], relu);
                p->s[l] += d;
                p->q[l] += d * (x[t + l] - mu);
            }
        }
        if (apply) {
            #pragma omp simd
            for (size_t l = t; l < t + W; ++l)
                out[l] = a * (TWIN(masked)(dya[l], ya[l], relu) - md) + b * (xa[l] - mua);
        }
    }
    for (; t < len; ++t) {
        if (sums) {
            const T d = TWIN(masked)(dy[t], y[t], relu);
            p->ts += d;
            p->tq += d * (x[t] - mu);
        }
        if (apply)
            out[t] = a * (TWIN(masked)(dya[t], ya[t], relu) - md) + b * (xa[t] - mua);
    }
}

/* (N, C, inner) layout, one stage of the backward: in one sweep over the samples,
 * sd[j] = sum(g), sdx[j] = sum(g * (x - mean)) with g = masked(dy, y) for the ns channels
 * js + j, and dx = A[j] * (g - mdy[j]) + B[j] * (x - mean) for the na channels ja + j
 * (ns, na <= RS_GROUP_MAX; either may be 0). A sample's runs of a group are one
 * contiguous span. Each channel's partial sums are flushed into double every RS_RUN
 * values. y is only read when relu. */
static RS_INLINE void TWIN(grad_stage_body)(size_t n, size_t stride, size_t inner,
                                            const T *restrict dy, const T *restrict y,
                                            const T *restrict x, const T *restrict mean,
                                            size_t js, size_t ns, double *restrict sd,
                                            double *restrict sdx, size_t ja, size_t na,
                                            const T *restrict A, const T *restrict B,
                                            const T *restrict mdy, T *restrict dx,
                                            const int relu)
{
    TWIN(partial) p[RS_GROUP_MAX];
    for (size_t j = 0; j < ns; ++j) {
        p[j] = (TWIN(partial)){{0}, {0}, 0, 0};
        sd[j] = 0.0;
        sdx[j] = 0.0;
    }
    const size_t nj = ns > na ? ns : na;
    size_t count = 0;  /* values in the partial sums, the same for every channel */
    for (size_t i = 0; i < n; ++i) {
        const size_t ahead = i + 1 < n ? stride : 0;
        size_t next = count;
        for (size_t j = 0; j < nj; ++j) {
            const size_t s0 = i * stride + (js + j) * inner;
            const size_t a0 = i * stride + (ja + j) * inner;
            const T ms = j < ns ? mean[js + j] : 0, ma = j < na ? mean[ja + j] : 0;
            const T aj = j < na ? A[j] : 0, bj = j < na ? B[j] : 0, mj = j < na ? mdy[j] : 0;
            size_t counted = count;
            for (size_t t0 = 0; t0 < inner;) {
                const size_t t1 = inner - t0 < RS_RUN ? inner : t0 + RS_RUN;
                const size_t so = s0 + t0, ao = a0 + t0;
                if (j < ns && j < na)
                    TWIN(grad_run)(t1 - t0, dy + so, y + so, x + so, ms, &p[j], ahead,
                                   dy + ao, y + ao, x + ao, ma, aj, bj, mj, dx + ao, 1, 1,
                                   relu);
                else if (j < ns)
                    TWIN(grad_run)(t1 - t0, dy + so, y + so, x + so, ms, &p[j], ahead, dy,
                                   y, x, 0, 0, 0, 0, dx, 1, 0, relu);
                else
                    TWIN(grad_run)(t1 - t0, dy, y, x, 0, p, 0, dy + ao, y + ao, x + ao, ma,
                                   aj, bj, mj, dx + ao, 0, 1, relu);
                counted += t1 - t0;
                t0 = t1;
                if (j < ns && (counted >= RS_RUN || (i + 1 == n && t0 == inner))) {
                    TWIN(partial_flush)(&p[j], &sd[j], &sdx[j]);
                    counted = 0;
                }
            }
            if (j < ns)
                next = counted;
        }
        count = next;
    }
}

static void TWIN(grad_stage)(size_t n, size_t stride, size_t inner, const T *restrict dy,
                             const T *restrict x, const T *restrict mean, size_t js,
                             size_t ns, double *restrict sd, double *restrict sdx, size_t ja,
                             size_t na, const T *restrict A, const T *restrict B,
                             const T *restrict mdy, T *restrict dx)
{
    TWIN(grad_stage_body)(n, stride, inner, dy, dy, x, mean, js, ns, sd, sdx, ja, na, A, B,
                          mdy, dx, 0);
}

static void TWIN(grad_stage_relu)(size_t n, size_t stride, size_t inner,
                                  const T *restrict dy, const T *restrict y,
                                  const T *restrict x, const T *restrict mean, size_t js,
                                  size_t ns, double *restrict sd, double *restrict sdx,
                                  size_t ja, size_t na, const T *restrict A,
                                  const T *restrict B, const T *restrict mdy,
                                  T *restrict dx)
{
    TWIN(grad_stage_body)(n, stride, inner, dy, y, x, mean, js, ns, sd, sdx, ja, na, A, B,
                          mdy, dx, 1);
}

/* The backward; with relu, of the batchnorm followed by a ReLU whose output is y (y is
 * only read when relu). */
static inline void TWIN(backward)(size_t n, size_t c, size_t inner, const T *restrict dy,
                                  const T *restrict y, const T *restrict x,
                                  const T *restrict gamma, const T *restrict mean,
                                  const T *restrict invstd, T *restrict dx,
                                  T *restrict dgamma, T *restrict dbeta, const int relu)
{
    const double m = (double)(n * inner);
    if (inner > 1) {
        const size_t stride = c * inner, group = TWIN(runs_group)(n, c, inner, relu ? 3 : 2);
        if (group == 0) {
            /* Small data, likely in cache: one channel at a time, summed then applied. */
            for (size_t j = 0; j < c; ++j) {
                const size_t off = j * inner;
                double sd, sdx;
                T A, B;
                if (relu)
                    TWIN(grad_sums_relu_runs)(n, stride, inner, dy + off, y + off, x + off,
                                              mean[j], &sd, &sdx);
                else
                    TWIN(grad_sums_runs)(n, stride, inner, dy + off, x + off, mean[j], &sd,
                                         &sdx);
                TWIN(grad_coefs)(1, m, &sd, &sdx, gamma + j, invstd + j, dgamma + j,
                                 dbeta + j, &A, &B);
                if (relu)
                    TWIN(grad_apply_relu_runs)(n, stride, inner, dy + off, y + off, x + off,
                                               mean[j], A, B, (T)(sd / m), dx + off);
                else
                    TWIN(grad_apply_runs)(n, stride, inner, dy + off, x + off, mean[j], A, B,
                                          (T)(sd / m), dx + off);
            }
            return;
        }
        /* Channels in groups: the stage that sums a group applies the group before it,
         * with the coefficients A, B, mdy the previous stage left. */
        double sd[RS_GROUP_MAX], sdx[RS_GROUP_MAX];
        T A[RS_GROUP_MAX], B[RS_GROUP_MAX], mdy[RS_GROUP_MAX];
        size_t ja = 0, na = 0;
        for (size_t js = 0;; js += group) {
            const size_t ns = js >= c ? 0 : c - js < group ? c - js : group;
            if (relu)
                TWIN(grad_stage_relu)(n, stride, inner, dy, y, x, mean, js, ns, sd, sdx, ja,
                                      na, A, B, mdy, dx);
            else
                TWIN(grad_stage)(n, stride, inner, dy, x, mean, js, ns, sd, sdx, ja, na, A,
                                 B, mdy, dx);
            if (ns == 0)
                return;
            TWIN(grad_coefs)(ns, m, sd, sdx, gamma + js, invstd + js, dgamma + js,
                             dbeta + js, A, B);
            for (size_t j = 0; j < ns; ++j)
                mdy[j] = (T)(sd[j] / m);
            ja = js;
            na = ns;
        }
    }
    /* Per channel of a strip: the sums (double) and their partial sums (T), which then
     * hold the coefficients A and B, and the mean of g. */
    double sd[STRIP], sdx[STRIP];
    T ps[STRIP], px[STRIP], md[STRIP];
    const T inv_m = (T)(1.0 / m);
    const size_t lead = TWIN(strip_lead)(n, c, dy);
    for (size_t j0 = 0, nb; j0 < c; j0 += nb) {
        nb = TWIN(strip_width)(c, j0, lead);
        if (relu)
            TWIN(grad_sums_relu_rows)(n, c, nb, dy + j0, y + j0, x + j0, mean + j0, sd, sdx,
                                      ps, px);
        else
            TWIN(grad_sums_rows)(n, c, nb, dy + j0, x + j0, mean + j0, sd, sdx, ps, px);
        TWIN(grad_coefs)(nb, m, sd, sdx, gamma + j0, invstd + j0, dgamma + j0, dbeta + j0,
                         ps, px);
        for (size_t j = 0; j < nb; ++j)
            md[j] = dbeta[j0 + j] * inv_m;
        if (relu)
            TWIN(grad_apply_relu_rows)(n, c, nb, dy + j0, y + j0, x + j0, mean + j0, ps, px,
                                       md, dx + j0);
        else
            TWIN(grad_apply_rows)(n, c, nb, dy + j0, x + j0, mean + j0, ps, px, md, dx + j0);
    }
}

static void TWIN(rs_batchnorm_backward)(size_t n, size_t c, size_t inner,
                                        const T *restrict dy, const T *restrict x,
                                        const T *restrict gamma, const T *restrict mean,
                                        const T *restrict invstd, T *restrict dx,
                                        T *restrict dgamma, T *restrict dbeta)
{
    TWIN(backward)(n, c, inner, dy, dy, x, gamma, mean, invstd, dx, dgamma, dbeta, 0);
}

static void TWIN(rs_batchnorm_relu_backward)(size_t n, size_t c, size_t inner,
                                             const T *restrict dy, const T *restrict y,
                                             const T *restrict x, const T *restrict gamma,
                                             const T *restrict mean,
                                             const T *restrict invstd, T *restrict dx,
                                             T *restrict dgamma, T *restrict dbeta)
{
    TWIN(backward)(n, c, inner, dy, y, x, gamma, mean, invstd, dx, dgamma, dbeta, 1);
}

#undef STRIP
#undef LANES
