/* The tests of one storage type, included by test_kernels.c once per type with T (float or
 * double), SUF (f32 or f64) and TOL (the relative tolerance of T) defined: every kernel of
 * type T against the double references; `xd` etc. hold the same values as the T arrays,
 * widened to double. TYPED(name) (csrc/twin.h) appends the suffix to a name. */
#if !defined(T) || !defined(SUF) || !defined(TOL)
#error "define T, SUF and TOL before including test_kernels_impl.h"
#endif

#define NAME STR(SUF) /* "f32" or "f64", to start messages */

static T *TYPED(fill)(size_t size, double lo, double hi, unsigned long long *rng)
{
    T *a = malloc(size * sizeof *a);
    for (size_t i = 0; i < size; ++i)
        a[i] = (T)(lo + (hi - lo) * uniform(rng));
    return a;
}

static double *TYPED(widen)(const T *a, size_t size)
{
    double *d = malloc(size * sizeof *d);
    for (size_t i = 0; i < size; ++i)
        d[i] = (double)a[i];
    return d;
}

/* Number of mismatches of the three batchnorm kernels on one layout. */
static int TYPED(test_batchnorm)(int isa, size_t n, size_t c, size_t inner, double offset,
                                unsigned long long *rng)
{
    int bad = 0;
    const size_t size = n * c * inner;
    const double m = (double)(n * inner), eps = 1e-5, momentum = 0.1;
    T *x = TYPED(fill)(size, offset - 2.0, offset + 2.0, rng);
    T *dy = TYPED(fill)(size, -1.0, 1.0, rng);
    T *gamma = TYPED(fill)(c, 0.5, 1.5, rng), *beta = TYPED(fill)(c, -1.0, 1.0, rng);
    T *rmean = TYPED(fill)(c, -1.0, 1.0, rng), *rvar = TYPED(fill)(c, 0.5, 2.0, rng);
    double *xd = TYPED(widen)(x, size), *dyd = TYPED(widen)(dy, size);
    double *rmean0 = TYPED(widen)(rmean, c), *rvar0 = TYPED(widen)(rvar, c);
    T *y = malloc(size * sizeof *y), *dx = malloc(size * sizeof *dx);
    T *mean = malloc(c * sizeof *mean), *invstd = malloc(c * sizeof *invstd);
    T *dgamma = malloc(c * sizeof *dgamma), *dbeta = malloc(c * sizeof *dbeta);

    TYPED(rs_batchnorm_forward)(isa, n, c, inner, x, gamma, beta, (T)eps, (T)momentum, rmean,
                               rvar, y, mean, invstd);
    for (size_t j = 0; j < c; ++j) {
        double mu, var;
        ref_stats(n, c, inner, xd, j, &mu, &var);
        const double is = 1.0 / sqrt(var + eps), g = (double)gamma[j];
        expect(&bad, NAME " mean", j, (double)mean[j], mu, TOL);
        expect(&bad, NAME " invstd", j, (double)invstd[j], is, TOL);
        expect(&bad, NAME " running_mean", j, (double)rmean[j],
               (1.0 - momentum) * rmean0[j] + momentum * mu, TOL);
        expect(&bad, NAME " running_var", j, (double)rvar[j],
               (1.0 - momentum) * rvar0[j] + momentum * var * m / (m - 1.0), TOL);
        for (size_t i = 0; i < n; ++i)
            for (size_t t = 0; t < inner; ++t) {
                const size_t k = (i * c + j) * inner + t;
                expect(&bad, NAME " y", k, (double)y[k], g * (xd[k] - mu) * is + (double)beta[j],
                       10 * TOL);
            }
        mean[j] = (T)mu; /* backward from exact statistics, so only it is tested */
        invstd[j] = (T)is;
    }

    TYPED(rs_batchnorm_backward)(isa, n, c, inner, dy, x, gamma, mean, invstd, dx, dgamma, dbeta);
    for (size_t j = 0; j < c; ++j) {
        const double mu = (double)mean[j], is = (double)invstd[j], g = (double)gamma[j];
        double sd = 0.0, sdx = 0.0;
        for (size_t i = 0; i < n; ++i)
            for (size_t t = 0; t < inner; ++t) {
                const size_t k = (i * c + j) * inner + t;
                sd += dyd[k];
                sdx += dyd[k] * (xd[k] - mu) * is;
            }
        expect(&bad, NAME " dbeta", j, (double)dbeta[j], sd, 10 * TOL * sqrt(m));
        expect(&bad, NAME " dgamma", j, (double)dgamma[j], sdx, 10 * TOL * sqrt(m));
        for (size_t i = 0; i < n; ++i)
            for (size_t t = 0; t < inner; ++t) {
                const size_t k = (i * c + j) * inner + t;
                const double xhat = (xd[k] - mu) * is;
                expect(&bad, NAME " dx", k, (double)dx[k],
                       g * is / m * (m * dyd[k] - sd - xhat * sdx), 100 * TOL);
            }
    }

    TYPED(rs_batchnorm_inference)(isa, n, c, inner, x, gamma, beta, rmean, rvar, (T)eps, y);
    for (size_t k = 0; k < size; ++k) {
        const size_t j = k / inner % c;
        expect(&bad, NAME " inference y", k, (double)y[k],
               (double)gamma[j] * (xd[k] - (double)rmean[j]) /
                       sqrt((double)rvar[j] + eps) + (double)beta[j],
               10 * TOL);
    }

    /* Without running statistics (NULL) the rest is unchanged. */
    TYPED(rs_batchnorm_forward)(isa, n, c, inner, x, gamma, beta, (T)eps, (T)momentum, NULL,
                               NULL, y, mean, invstd);
    for (size_t j = 0; j < c; ++j) {
        double mu, var;
        ref_stats(n, c, inner, xd, j, &mu, &var);
        expect(&bad, NAME " mean (no running)", j, (double)mean[j], mu, TOL);
    }
    free(x), free(dy), free(gamma), free(beta), free(rmean), free(rvar), free(xd);
    free(dyd), free(rmean0), free(rvar0), free(y), free(dx), free(mean), free(invstd);
    free(dgamma), free(dbeta);
    return bad;
}

/* Number of mismatches of the three fused batchnorm + ReLU kernels on one layout: each
 * must equal exactly its unfused kernel followed by the ReLU (forward, inference) or fed
 * the ReLU's masked gradient (backward), which test_batchnorm checks against the double
 * references. */
static int TYPED(test_batchnorm_relu)(int isa, size_t n, size_t c, size_t inner,
                                     unsigned long long *rng)
{
    int bad = 0;
    const size_t size = n * c * inner;
    const T eps = (T)1e-5, momentum = (T)0.1;
    T *x = TYPED(fill)(size, -2.0, 2.0, rng), *dy = TYPED(fill)(size, -1.0, 1.0, rng);
    T *gamma = TYPED(fill)(c, 0.5, 1.5, rng), *beta = TYPED(fill)(c, -1.0, 1.0, rng);
    T *rmean = TYPED(fill)(c, -1.0, 1.0, rng), *rvar = TYPED(fill)(c, 0.5, 2.0, rng);
    T *rmean2 = malloc(c * sizeof *rmean2), *rvar2 = malloc(c * sizeof *rvar2);
    T *y = malloc(size * sizeof *y), *y2 = malloc(size * sizeof *y2);
    T *g = malloc(size * sizeof *g), *dx = malloc(size * sizeof *dx);
    T *dx2 = malloc(size * sizeof *dx2);
    T *mean = malloc(c * sizeof *mean), *invstd = malloc(c * sizeof *invstd);
    T *mean2 = malloc(c * sizeof *mean2), *invstd2 = malloc(c * sizeof *invstd2);
    T *dgamma = malloc(c * sizeof *dgamma), *dbeta = malloc(c * sizeof *dbeta);
    T *dgamma2 = malloc(c * sizeof *dgamma2), *dbeta2 = malloc(c * sizeof *dbeta2);
    for (size_t j = 0; j < c; ++j) {
        rmean2[j] = rmean[j];
        rvar2[j] = rvar[j];
    }

    TYPED(rs_batchnorm_relu_forward)(isa, n, c, inner, x, gamma, beta, eps, momentum, rmean, rvar,
                                    y, mean, invstd);
    TYPED(rs_batchnorm_forward)(isa, n, c, inner, x, gamma, beta, eps, momentum, rmean2, rvar2, y2,
                               mean2, invstd2);
    for (size_t j = 0; j < c; ++j) {
        expect(&bad, NAME " relu mean", j, (double)mean[j], (double)mean2[j], 0.0);
        expect(&bad, NAME " relu invstd", j, (double)invstd[j], (double)invstd2[j], 0.0);
        expect(&bad, NAME " relu running_mean", j, (double)rmean[j], (double)rmean2[j], 0.0);
        expect(&bad, NAME " relu running_var", j, (double)rvar[j], (double)rvar2[j], 0.0);
    }
    for (size_t k = 0; k < size; ++k) {
        const T want = y2[k] < 0 ? (T)0 : y2[k];
        expect(&bad, NAME " relu y", k, (double)y[k], (double)want, 0.0);
        g[k] = y[k] > 0 ? dy[k] : (T)0; /* the masked gradient, for the unfused backward */
    }

    TYPED(rs_batchnorm_relu_backward)(isa, n, c, inner, dy, y, x, gamma, mean, invstd, dx, dgamma,
                                     dbeta);
    TYPED(rs_batchnorm_backward)(isa, n, c, inner, g, x, gamma, mean, invstd, dx2, dgamma2, dbeta2);
    for (size_t j = 0; j < c; ++j) {
        expect(&bad, NAME " relu dgamma", j, (double)dgamma[j], (double)dgamma2[j], 0.0);
        expect(&bad, NAME " relu dbeta", j, (double)dbeta[j], (double)dbeta2[j], 0.0);
    }
    for (size_t k = 0; k < size; ++k)
        expect(&bad, NAME " relu dx", k, (double)dx[k], (double)dx2[k], 0.0);

    TYPED(rs_batchnorm_relu_inference)(isa, n, c, inner, x, gamma, beta, rmean, rvar, eps, y);
    TYPED(rs_batchnorm_inference)(isa, n, c, inner, x, gamma, beta, rmean, rvar, eps, y2);
    for (size_t k = 0; k < size; ++k)
        expect(&bad, NAME " relu inference y", k, (double)y[k],
               (double)(y2[k] < 0 ? (T)0 : y2[k]), 0.0);

    /* Without running statistics (NULL) the rest is unchanged. */
    TYPED(rs_batchnorm_relu_forward)(isa, n, c, inner, x, gamma, beta, eps, momentum, NULL, NULL,
                                    y, mean, invstd);
    for (size_t j = 0; j < c; ++j)
        expect(&bad, NAME " relu mean (no running)", j, (double)mean[j], (double)mean2[j], 0.0);
    free(x), free(dy), free(gamma), free(beta), free(rmean), free(rvar), free(rmean2);
    free(rvar2), free(y), free(y2), free(g), free(dx), free(dx2), free(mean), free(invstd);
    free(mean2), free(invstd2), free(dgamma), free(dbeta), free(dgamma2), free(dbeta2);
    return bad;
}

/* The arrays of one run of the (N, C) kernels at one placement: `shift` bytes past the
 * start of exact-size blocks (malloc'd `shift` bytes larger, so a read past the end is
 * still caught). */
typedef struct {
    char *blocks[6];
    T *x, *dy, *y, *dx, *yr, *dxr;
} TYPED(placed);

static TYPED(placed) TYPED(place)(const T *x, const T *dy, size_t size, size_t shift)
{
    TYPED(placed) p;
    T **arrays[6] = {&p.x, &p.dy, &p.y, &p.dx, &p.yr, &p.dxr};
    for (size_t a = 0; a < 6; ++a) {
        p.blocks[a] = malloc(size * sizeof(T) + shift);
        *arrays[a] = (T *)(void *)(p.blocks[a] + shift);
    }
    memcpy(p.x, x, size * sizeof(T));
    memcpy(p.dy, dy, size * sizeof(T));
    return p;
}

/* Number of differences between the (N, C) kernels' results on an input of n x c (over
 * RS_CACHED_BYTES, rows a multiple of 64 bytes) placed on a 64-byte boundary and `shift`
 * bytes past one: the second starts with a lead strip (batchnorm_impl.h), which must not
 * change a bit, since each channel is reduced on its own. */
static int TYPED(test_batchnorm_placement)(int isa, size_t n, size_t c, size_t shift,
                                          unsigned long long *rng)
{
    int bad = 0;
    const size_t size = n * c;
    const T eps = (T)1e-5;
    T *x = TYPED(fill)(size, -2.0, 2.0, rng), *dy = TYPED(fill)(size, -1.0, 1.0, rng);
    T *gamma = TYPED(fill)(c, 0.5, 1.5, rng), *beta = TYPED(fill)(c, -1.0, 1.0, rng);
    /* Per run: mean, invstd, dgamma, dbeta, and the fused backward's dgamma, dbeta. */
    T *stats = malloc(12 * c * sizeof *stats);
    TYPED(placed) run[2] = {TYPED(place)(x, dy, size, 64), TYPED(place)(x, dy, size, 64 + shift)};
    for (size_t r = 0; r < 2; ++r) {
        TYPED(placed) *p = &run[r];
        T *mean = stats + 6 * r * c, *invstd = mean + c, *dgamma = invstd + c, *dbeta = dgamma + c;
        T *dgamma_r = dbeta + c, *dbeta_r = dgamma_r + c;
        TYPED(rs_batchnorm_forward)(isa, n, c, 1, p->x, gamma, beta, eps, (T)0.1, NULL, NULL,
                                   p->y, mean, invstd);
        TYPED(rs_batchnorm_backward)(isa, n, c, 1, p->dy, p->x, gamma, mean, invstd, p->dx,
                                    dgamma, dbeta);
        TYPED(rs_batchnorm_relu_forward)(isa, n, c, 1, p->x, gamma, beta, eps, (T)0.1, NULL,
                                        NULL, p->yr, mean, invstd);
        TYPED(rs_batchnorm_relu_backward)(isa, n, c, 1, p->dy, p->yr, p->x, gamma, mean, invstd,
                                         p->dxr, dgamma_r, dbeta_r);
        TYPED(rs_batchnorm_inference)(isa, n, c, 1, p->x, gamma, beta, gamma, gamma, eps, p->dy);
    }
    for (size_t j = 0; j < 6 * c; ++j)
        expect(&bad, NAME " placed stats", j, (double)stats[6 * c + j], (double)stats[j], 0.0);
    T *const pairs[5][2] = {{run[0].y, run[1].y}, {run[0].dx, run[1].dx}, {run[0].yr, run[1].yr},
                            {run[0].dxr, run[1].dxr}, {run[0].dy, run[1].dy}};
    for (size_t a = 0; a < 5; ++a)
        for (size_t k = 0; k < size; ++k)
            expect(&bad, NAME " placed output", k, (double)pairs[a][1][k], (double)pairs[a][0][k],
                   0.0);
    for (size_t r = 0; r < 2; ++r)
        for (size_t a = 0; a < 6; ++a)
            free(run[r].blocks[a]);
    free(x), free(dy), free(gamma), free(beta), free(stats);
    return bad;
}

/* Number of mismatches of the softmax cross-entropy on n rows of k classes. */
static int TYPED(test_loss)(int isa, size_t n, size_t k, unsigned long long *rng)
{
    int bad = 0;
    T *s = TYPED(fill)(n * k, -20.0, 20.0, rng);
    long long *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; ++i)
        y[i] = (long long)(uniform(rng) * (double)k) % (long long)k;
    T *loss = malloc(n * sizeof *loss), *hit = malloc(n * sizeof *hit);
    T *ds = malloc(n * k * sizeof *ds);
    const double scale = 0.25;
    TYPED(rs_softmax_cross_entropy)(isa, n, k, s, y, scale, loss, hit, ds);
    for (size_t i = 0; i < n; ++i) {
        const T *row = s + i * k;
        size_t best = 0;
        double mx = (double)row[0], sum = 0.0;
        for (size_t c = 1; c < k; ++c)
            if (row[c] > row[best])
                best = c, mx = (double)row[c];
        for (size_t c = 0; c < k; ++c)
            sum += exp((double)row[c] - mx);
        expect(&bad, NAME " loss", i, (double)loss[i], log(sum) - ((double)row[y[i]] - mx), TOL);
        expect(&bad, NAME " hit", i, (double)hit[i], best == (size_t)y[i] ? 1.0 : 0.0, 0.0);
        for (size_t c = 0; c < k; ++c) {
            const double p = exp((double)row[c] - mx) / sum;
            expect(&bad, NAME " loss grad", i * k + c, (double)ds[i * k + c],
                   scale * (c == (size_t)y[i] ? p - 1.0 : p), TOL);
        }
    }
    free(s), free(y), free(loss), free(hit), free(ds);
    return bad;
}

/* Number of mismatches of the max pooling over corners on c rows of `length` values, s
 * windows a row. Values are drawn from a few levels, so windows hold ties; dx starts as
 * garbage, which the backward must overwrite everywhere. */
static int TYPED(test_pool)(int isa, size_t c, size_t length, size_t s, unsigned long long *rng)
{
    int bad = 0;
    T *x = malloc(c * length * sizeof *x), *dy = TYPED(fill)(c * s, -1.0, 1.0, rng);
    T *y = malloc(c * s * sizeof *y), *dx = TYPED(fill)(c * length, 5.0, 6.0, rng);
    for (size_t i = 0; i < c * length; ++i)
        x[i] = (T)(int)(uniform(rng) * 3.0);
    TYPED(rs_max_pool_corners_forward)(isa, c, length, s, x, y);
    TYPED(rs_max_pool_corners_backward)(isa, c, length, s, dy, x, y, dx);
    for (size_t j = 0; j < c; ++j) {
        const T *row = x + j * length;
        for (size_t i = 0; i < s; ++i) {
            size_t first = 0;
            for (size_t q = 1; q < 4; ++q)
                if (row[q * s + i] > row[first * s + i])
                    first = q;
            expect(&bad, NAME " pool", j * s + i, (double)y[j * s + i], (double)row[first * s + i], 0.0);
            for (size_t q = 0; q < 4; ++q)
                expect(&bad, NAME " pool grad", j * length + q * s + i, (double)dx[j * length + q * s + i],
                       q == first ? (double)dy[j * s + i] : 0.0, 0.0);
        }
        for (size_t i = 4 * s; i < length; ++i)
            expect(&bad, NAME " pool grad outside", j * length + i, (double)dx[j * length + i], 0.0, 0.0);
    }
    free(x), free(dy), free(y), free(dx);
    return bad;
}

/* Number of mismatches of the four Winograd transforms on c channels of h x w images, n lanes,
 * against the matrices of F(2x2, 3x3) applied in double (WINO_BT, WINO_AT); the backward
 * transforms against the transposed matrices, scattered. dx and y start as garbage. */
static int TYPED(test_winograd)(int isa, size_t c, size_t h, size_t w, size_t n, unsigned long long *rng)
{
    int bad = 0;
    const size_t tw = w / 2, tiles = h / 2 * tw, image = c * h * w * n, planes = 16 * c * tiles * n;
    T *x = TYPED(fill)(image, -1.0, 1.0, rng), *dv = TYPED(fill)(planes, -1.0, 1.0, rng);
    T *v = TYPED(fill)(planes, 5.0, 6.0, rng), *dx = TYPED(fill)(image, 5.0, 6.0, rng);
    T *y = TYPED(fill)(4 * c * tiles * n, 5.0, 6.0, rng), *dm = TYPED(fill)(planes, 5.0, 6.0, rng);
    double *want = calloc(image, sizeof *want);
    TYPED(rs_winograd_input_forward)(isa, c, h, w, n, x, v);
    TYPED(rs_winograd_input_backward)(isa, c, h, w, n, dv, dx);
    TYPED(rs_winograd_output_forward)(isa, c, tiles * n, dv, y);  /* dv serves as m (16, c, tiles * n) */
    TYPED(rs_winograd_output_backward)(isa, c, tiles * n, y, dm);
    for (size_t j = 0; j < c; ++j)
        for (size_t t = 0; t < tiles; ++t)
            for (size_t i = 0; i < n; ++i) {
                const size_t e = (j * tiles + t) * n + i, plane = c * tiles * n;
                double d[4][4], g[4][4], m[4][4], out[2][2];
                for (size_t u = 0; u < 4; ++u)
                    for (size_t q = 0; q < 4; ++q) {
                        const size_t r = 2 * (t / tw) + u, col = 2 * (t % tw) + q; /* padded */
                        const int inside = r >= 1 && r <= h && col >= 1 && col <= w;
                        d[u][q] = inside ? (double)x[((j * h + r - 1) * w + col - 1) * n + i] : 0.0;
                        m[u][q] = (double)dv[(4 * u + q) * plane + e];
                    }
                for (size_t u = 0; u < 4; ++u)
                    for (size_t q = 0; q < 4; ++q) {
                        double vt = 0.0, gt = 0.0; /* (B^T d B)[u][q], (B dv B^T)[u][q] */
                        for (size_t a = 0; a < 4; ++a)
                            for (size_t b = 0; b < 4; ++b) {
                                vt += WINO_BT[u][a] * d[a][b] * WINO_BT[q][b];
                                gt += WINO_BT[a][u] * m[a][b] * WINO_BT[b][q];
                            }
                        const size_t k = (4 * u + q) * plane + e;
                        expect(&bad, NAME " winograd input", k, (double)v[k], vt, TOL);
                        g[u][q] = gt;
                    }
                for (size_t u = 0; u < 4; ++u)
                    for (size_t q = 0; q < 4; ++q) {
                        const size_t r = 2 * (t / tw) + u, col = 2 * (t % tw) + q;
                        if (r >= 1 && r <= h && col >= 1 && col <= w)
                            want[((j * h + r - 1) * w + col - 1) * n + i] += g[u][q];
                    }
                for (size_t a = 0; a < 2; ++a)
                    for (size_t b = 0; b < 2; ++b) { /* (A^T m A)[a][b], m = dv */
                        out[a][b] = 0.0;
                        for (size_t u = 0; u < 4; ++u)
                            for (size_t q = 0; q < 4; ++q)
                                out[a][b] += WINO_AT[a][u] * m[u][q] * WINO_AT[b][q];
                        const size_t k = (j * 4 + 2 * a + b) * tiles * n + t * n + i;
                        expect(&bad, NAME " winograd output", k, (double)y[k], out[a][b], TOL);
                    }
                for (size_t u = 0; u < 4; ++u)
                    for (size_t q = 0; q < 4; ++q) { /* (A y A^T)[u][q], y as the kernel wrote it */
                        double dmt = 0.0;
                        for (size_t a = 0; a < 2; ++a)
                            for (size_t b = 0; b < 2; ++b)
                                dmt += WINO_AT[a][u] * (double)y[(j * 4 + 2 * a + b) * tiles * n + t * n + i] *
                                       WINO_AT[b][q];
                        expect(&bad, NAME " winograd output grad", (4 * u + q) * plane + e,
                               (double)dm[(4 * u + q) * plane + e], dmt, TOL);
                    }
            }
    for (size_t k = 0; k < image; ++k)
        expect(&bad, NAME " winograd input grad", k, (double)dx[k], want[k], TOL);
    free(x), free(dv), free(v), free(dx), free(y), free(dm), free(want);
    return bad;
}

/* Number of mismatches of one step of each optimizer on `size` values. */
static int TYPED(test_optim)(int isa, size_t size, unsigned long long *rng)
{
    int bad = 0;
    const double lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.1;
    T *p = TYPED(fill)(size, -1.0, 1.0, rng), *g = TYPED(fill)(size, -1.0, 1.0, rng);
    T *m = TYPED(fill)(size, -0.1, 0.1, rng), *v = TYPED(fill)(size, 0.0, 0.01, rng);
    double *pd = TYPED(widen)(p, size), *gd = TYPED(widen)(g, size);
    double *md = TYPED(widen)(m, size), *vd = TYPED(widen)(v, size);
    const long long step = 3;

    TYPED(rs_adam_update)(isa, size, p, g, m, v, step, lr, beta1, beta2, eps, wd);
    for (size_t i = 0; i < size; ++i) {
        md[i] = beta1 * md[i] + (1.0 - beta1) * gd[i];
        vd[i] = beta2 * vd[i] + (1.0 - beta2) * gd[i] * gd[i];
        const double mhat = md[i] / (1.0 - pow(beta1, (double)step));
        const double vhat = vd[i] / (1.0 - pow(beta2, (double)step));
        pd[i] = pd[i] - lr * wd * pd[i] - lr * mhat / (sqrt(vhat) + eps);
        expect(&bad, NAME " adam m", i, (double)m[i], md[i], TOL);
        expect(&bad, NAME " adam v", i, (double)v[i], vd[i], TOL);
        expect(&bad, NAME " adam param", i, (double)p[i], pd[i], TOL);
    }

    TYPED(rs_momentum_update)(isa, size, p, g, m, lr, beta1);
    for (size_t i = 0; i < size; ++i) {
        md[i] = beta1 * md[i] + (1.0 - beta1) * gd[i];
        pd[i] -= lr * md[i];
        expect(&bad, NAME " momentum velocity", i, (double)m[i], md[i], TOL);
        expect(&bad, NAME " momentum param", i, (double)p[i], pd[i], TOL);
    }

    TYPED(rs_rmsprop_update)(isa, size, p, g, v, lr, beta2, eps);
    for (size_t i = 0; i < size; ++i) {
        vd[i] = beta2 * vd[i] + (1.0 - beta2) * gd[i] * gd[i];
        pd[i] -= lr * gd[i] / (sqrt(vd[i]) + eps);
        expect(&bad, NAME " rmsprop sq", i, (double)v[i], vd[i], TOL);
        expect(&bad, NAME " rmsprop param", i, (double)p[i], pd[i], TOL);
    }

    TYPED(rs_sgd_update)(isa, size, p, g, lr, wd);
    for (size_t i = 0; i < size; ++i) {
        pd[i] -= lr * (gd[i] + wd * pd[i]);
        expect(&bad, NAME " sgd param", i, (double)p[i], pd[i], TOL);
    }
    free(p), free(g), free(m), free(v), free(pd), free(gd), free(md), free(vd);
    return bad;
}

/* Mismatches of the batched optimizer kernels against the single-array ones, exactly: the
 * updates of arrays of sizes `sizes` (the last one's arrays given twice, updated twice in a
 * row), one call of each batched kernel on one copy of the arrays against one call of the
 * single kernel per update, in order, on the other. A count of 0 reads nothing (NULL). With
 * `packed`, the batched kernels are called through their packed entries (scalars in one
 * array, as the plans' step calls them). */
static int TYPED(test_optim_batched)(int isa, int packed, unsigned long long *rng)
{
    enum { UPDATES = 4, ARRAYS = 3 };
    static const size_t sizes[UPDATES] = {1, 17, 1029, 1029};
    const double lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.1;
    const long long step = 3;
    int bad = 0;
    /* a[k][i], b[k][i]: the same values, for the batched and the single calls; k = 0 param,
     * 1 m (velocity, sq), 2 v; grads g[i]. Update 3 takes update 2's arrays again. */
    T *a[ARRAYS][UPDATES], *b[ARRAYS][UPDATES], *g[UPDATES];
    for (size_t i = 0; i < UPDATES; ++i) {
        g[i] = i == 3 ? g[2] : TYPED(fill)(sizes[i], -1.0, 1.0, rng);
        for (size_t k = 0; k < ARRAYS; ++k) {
            if (i == 3) {
                a[k][i] = a[k][2], b[k][i] = b[k][2];
                continue;
            }
            a[k][i] = TYPED(fill)(sizes[i], k == 2 ? 0.0 : -1.0, 1.0, rng);
            b[k][i] = malloc(sizes[i] * sizeof *b[k][i]);
            for (size_t j = 0; j < sizes[i]; ++j)
                b[k][i][j] = a[k][i][j];
        }
    }
    struct TYPED(rs_adam_update_arrays) adam[UPDATES];
    struct TYPED(rs_momentum_update_arrays) momentum[UPDATES];
    struct TYPED(rs_rmsprop_update_arrays) rmsprop[UPDATES];
    struct TYPED(rs_sgd_update_arrays) sgd[UPDATES];
    for (size_t i = 0; i < UPDATES; ++i) {
        adam[i] = (struct TYPED(rs_adam_update_arrays)){sizes[i], a[0][i], g[i], a[1][i], a[2][i]};
        momentum[i] = (struct TYPED(rs_momentum_update_arrays)){sizes[i], a[0][i], g[i], a[1][i]};
        rmsprop[i] = (struct TYPED(rs_rmsprop_update_arrays)){sizes[i], a[0][i], g[i], a[2][i]};
        sgd[i] = (struct TYPED(rs_sgd_update_arrays)){sizes[i], a[0][i], g[i]};
    }

    if (packed) {
        const double adam_scalars[] = {(double)step, lr, beta1, beta2, eps, wd};
        const double momentum_scalars[] = {lr, beta1}, rmsprop_scalars[] = {lr, beta2, eps};
        const double sgd_scalars[] = {lr, wd};
        TYPED(rs_adam_updates_packed)(isa, UPDATES, adam, adam_scalars);
        TYPED(rs_momentum_updates_packed)(isa, UPDATES, momentum, momentum_scalars);
        TYPED(rs_rmsprop_updates_packed)(isa, UPDATES, rmsprop, rmsprop_scalars);
        TYPED(rs_sgd_updates_packed)(isa, UPDATES, sgd, sgd_scalars);
    } else {
        TYPED(rs_adam_updates)(isa, UPDATES, adam, step, lr, beta1, beta2, eps, wd);
        TYPED(rs_momentum_updates)(isa, UPDATES, momentum, lr, beta1);
        TYPED(rs_rmsprop_updates)(isa, UPDATES, rmsprop, lr, beta2, eps);
        TYPED(rs_sgd_updates)(isa, UPDATES, sgd, lr, wd);
    }
    TYPED(rs_adam_updates)(isa, 0, NULL, step, lr, beta1, beta2, eps, wd);
    TYPED(rs_momentum_updates)(isa, 0, NULL, lr, beta1);
    TYPED(rs_rmsprop_updates)(isa, 0, NULL, lr, beta2, eps);
    TYPED(rs_sgd_updates)(isa, 0, NULL, lr, wd);
    for (size_t i = 0; i < UPDATES; ++i)
        TYPED(rs_adam_update)(isa, sizes[i], b[0][i], g[i], b[1][i], b[2][i], step, lr, beta1,
                              beta2, eps, wd);
    for (size_t i = 0; i < UPDATES; ++i)
        TYPED(rs_momentum_update)(isa, sizes[i], b[0][i], g[i], b[1][i], lr, beta1);
    for (size_t i = 0; i < UPDATES; ++i)
        TYPED(rs_rmsprop_update)(isa, sizes[i], b[0][i], g[i], b[2][i], lr, beta2, eps);
    for (size_t i = 0; i < UPDATES; ++i)
        TYPED(rs_sgd_update)(isa, sizes[i], b[0][i], g[i], lr, wd);

    for (size_t i = 0; i < UPDATES - 1; ++i)
        for (size_t k = 0; k < ARRAYS; ++k)
            for (size_t j = 0; j < sizes[i]; ++j)
                expect(&bad, NAME " batched update", j, (double)a[k][i][j], (double)b[k][i][j],
                       0.0);
    for (size_t i = 0; i < UPDATES - 1; ++i) {
        free(g[i]);
        for (size_t k = 0; k < ARRAYS; ++k)
            free(a[k][i]), free(b[k][i]);
    }
    return bad;
}

#undef NAME
