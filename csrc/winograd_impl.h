/* Winograd F(2x2, 3x3) transforms: the CNN's 3x3 convolutions as 16 matmuls (research/nn/cnn.py),
 * forward and backward.
 *
 * The body of the variants of every instruction set and type, included by winograd.c through
 * each_isa.h with ISA, T and SUF defined; TWIN(name) (twin.h) appends both suffixes.
 *
 * Every loop is elementwise over the innermost axis (the batch, n values a pixel, or a tile's
 * run of the CNN's work arrays), in chunks of RS_WINO_CHUNK: the transforms are sums and
 * differences in a fixed order, so they vectorize with no shuffle and every variant gives the
 * same bits. A tile's rows and columns outside the image read a chunk of zeros on the stack
 * (the "same" padding); nothing is allocated.
 */
#if !defined(T) || !defined(SUF)
#error "define T and SUF before including winograd_impl.h"
#endif

/* v[p][j][t][i] = (B^T d B)[p], d the 4x4 input tile t of channel j (rows 2 * ti - 1 ..
 * 2 * ti + 2, columns 2 * tj - 1 .. 2 * tj + 2, zero outside), lane i of n. */
static void TWIN(rs_winograd_input_forward)(size_t c, size_t h, size_t w, size_t n,
                                            const T *restrict x, T *restrict v)
{
    const size_t th = h / 2, tw = w / 2, tiles = th * tw, plane = c * tiles * n;
    const T zero[RS_WINO_CHUNK] = {0};
    for (size_t j = 0; j < c; ++j)
        for (size_t ti = 0; ti < th; ++ti)
            for (size_t tj = 0; tj < tw; ++tj)
                for (size_t i0 = 0; i0 < n; i0 += RS_WINO_CHUNK) {
                    const size_t len = n - i0 < RS_WINO_CHUNK ? n - i0 : RS_WINO_CHUNK;
                    const T *d[16];
                    for (size_t u = 0; u < 4; ++u)
                        for (size_t q = 0; q < 4; ++q) {
                            const size_t r = 2 * ti + u, col = 2 * tj + q; /* padded coordinates */
                            const int inside = r >= 1 && r <= h && col >= 1 && col <= w;
                            d[4 * u + q] = inside ? x + ((j * h + r - 1) * w + col - 1) * n + i0 : zero;
                        }
                    T *restrict out = v + (j * tiles + ti * tw + tj) * n + i0;
#pragma omp simd
                    for (size_t i = 0; i < len; ++i) {
                        T t[16];
                        for (size_t q = 0; q < 4; ++q) { /* B^T d: the rows */
                            t[q] = d[q][i] - d[8 + q][i];
                            t[4 + q] = d[4 + q][i] + d[8 + q][i];
                            t[8 + q] = d[8 + q][i] - d[4 + q][i];
                            t[12 + q] = d[4 + q][i] - d[12 + q][i];
                        }
                        for (size_t u = 0; u < 4; ++u) { /* (B^T d) B: the columns */
                            out[(4 * u) * plane + i] = t[4 * u] - t[4 * u + 2];
                            out[(4 * u + 1) * plane + i] = t[4 * u + 1] + t[4 * u + 2];
                            out[(4 * u + 2) * plane + i] = t[4 * u + 2] - t[4 * u + 1];
                            out[(4 * u + 3) * plane + i] = t[4 * u + 1] - t[4 * u + 3];
                        }
                    }
                }
}

/* dx = the sum over tiles of B dv B^T, each tile's 4x4 added where it lies inside the image:
 * the adjoint of rs_winograd_input_forward, tiles added in order. */
static void TWIN(rs_winograd_input_backward)(size_t c, size_t h, size_t w, size_t n,
                                             const T *restrict dv, T *restrict dx)
{
    const size_t th = h / 2, tw = w / 2, tiles = th * tw, plane = c * tiles * n;
    T dd[16][RS_WINO_CHUNK];
    for (size_t j = 0; j < c; ++j) {
        T *restrict dxj = dx + j * h * w * n;
        for (size_t e = 0; e < h * w * n; ++e)
            dxj[e] = (T)0;
        for (size_t ti = 0; ti < th; ++ti)
            for (size_t tj = 0; tj < tw; ++tj)
                for (size_t i0 = 0; i0 < n; i0 += RS_WINO_CHUNK) {
                    const size_t len = n - i0 < RS_WINO_CHUNK ? n - i0 : RS_WINO_CHUNK;
                    const T *restrict g = dv + (j * tiles + ti * tw + tj) * n + i0;
#pragma omp simd
                    for (size_t i = 0; i < len; ++i) {
                        T q[16];
                        for (size_t b = 0; b < 4; ++b) { /* B dv: the rows */
                            const T g0 = g[b * plane + i], g1 = g[(4 + b) * plane + i];
                            const T g2 = g[(8 + b) * plane + i], g3 = g[(12 + b) * plane + i];
                            q[b] = g0;
                            q[4 + b] = g1 - g2 + g3;
                            q[8 + b] = g1 + g2 - g0;
                            q[12 + b] = -g3;
                        }
                        for (size_t u = 0; u < 4; ++u) { /* (B dv) B^T: the columns */
                            dd[4 * u][i] = q[4 * u];
                            dd[4 * u + 1][i] = q[4 * u + 1] - q[4 * u + 2] + q[4 * u + 3];
                            dd[4 * u + 2][i] = q[4 * u + 1] + q[4 * u + 2] - q[4 * u];
                            dd[4 * u + 3][i] = -q[4 * u + 3];
                        }
                    }
                    for (size_t u = 0; u < 4; ++u)
                        for (size_t p = 0; p < 4; ++p) {
                            const size_t r = 2 * ti + u, col = 2 * tj + p; /* padded coordinates */
                            if (r < 1 || r > h || col < 1 || col > w)
                                continue;
                            T *restrict to = dxj + ((r - 1) * w + col - 1) * n + i0;
                            const T *restrict from = dd[4 * u + p];
#pragma omp simd
                            for (size_t i = 0; i < len; ++i)
                                to[i] += from[i];
                        }
                }
    }
}

/* y[k][a][e] = (A^T m A)[a], m the 16 values m[p][k][e]: a = 2 * row + column of the 2x2
 * output tile. */
static void TWIN(rs_winograd_output_forward)(size_t k, size_t length, const T *restrict m,
                                             T *restrict y)
{
    const size_t plane = k * length;
    for (size_t o = 0; o < k; ++o)
        for (size_t i0 = 0; i0 < length; i0 += RS_WINO_CHUNK) {
            const size_t len = length - i0 < RS_WINO_CHUNK ? length - i0 : RS_WINO_CHUNK;
            const T *restrict mo = m + o * length + i0;
            T *restrict yo = y + o * 4 * length + i0;
#pragma omp simd
            for (size_t i = 0; i < len; ++i) {
                T r[8];
                for (size_t u = 0; u < 4; ++u) { /* m A: the columns */
                    const T m0 = mo[(4 * u) * plane + i], m1 = mo[(4 * u + 1) * plane + i];
                    const T m2 = mo[(4 * u + 2) * plane + i], m3 = mo[(4 * u + 3) * plane + i];
                    r[u] = m0 + m1 + m2;
                    r[4 + u] = m1 - m2 - m3;
                }
                for (size_t b = 0; b < 2; ++b) { /* A^T (m A): the rows */
                    yo[b * length + i] = r[4 * b] + r[4 * b + 1] + r[4 * b + 2];
                    yo[(2 + b) * length + i] = r[4 * b + 1] - r[4 * b + 2] - r[4 * b + 3];
                }
            }
        }
}

/* dm[p][k][e] = (A dy A^T)[p]: the adjoint of rs_winograd_output_forward. */
static void TWIN(rs_winograd_output_backward)(size_t k, size_t length, const T *restrict dy,
                                              T *restrict dm)
{
    const size_t plane = k * length;
    for (size_t o = 0; o < k; ++o)
        for (size_t i0 = 0; i0 < length; i0 += RS_WINO_CHUNK) {
            const size_t len = length - i0 < RS_WINO_CHUNK ? length - i0 : RS_WINO_CHUNK;
            const T *restrict g = dy + o * 4 * length + i0;
            T *restrict to = dm + o * length + i0;
#pragma omp simd
            for (size_t i = 0; i < len; ++i) {
                const T g00 = g[i], g01 = g[length + i], g10 = g[2 * length + i], g11 = g[3 * length + i];
                const T r[8] = {g00, g00 + g10, g00 - g10, -g10,  /* A dy: the rows, column 0 */
                                g01, g01 + g11, g01 - g11, -g11}; /* column 1 */
                for (size_t u = 0; u < 4; ++u) {                   /* (A dy) A^T: the columns */
                    to[(4 * u) * plane + i] = r[u];
                    to[(4 * u + 1) * plane + i] = r[u] + r[4 + u];
                    to[(4 * u + 2) * plane + i] = r[u] - r[4 + u];
                    to[(4 * u + 3) * plane + i] = -r[4 + u];
                }
            }
        }
}
