/* 2x2 max pooling over window corners: the CNN's pooling (research/nn/cnn.py), forward and
 * backward.
 *
 * The body of the variants of every instruction set and type, included by pool.c through
 * each_isa.h with ISA, T and SUF defined; TWIN(name) (twin.h) appends both suffixes.
 *
 * A channel's row holds the (0, 0) corners of its s windows, then the (0, 1), (1, 0) and
 * (1, 1) corners, then values no window covers (length - 4 * s of them), so each corner is
 * one contiguous run and both loops are elementwise over s: they vectorize with no shuffle.
 * RS_POOL_MAX (pool.c) is numpy's maximum (NaN wins), taken in the order (x2 max x3) max (x0 max x1); the
 * backward compares exactly, so every variant gives the same bits.
 */
#if !defined(T) || !defined(SUF)
#error "define T and SUF before including pool_impl.h"
#endif

static void TWIN(rs_max_pool_corners_forward)(size_t c, size_t length, size_t s,
                                              const T *restrict x, T *restrict y)
{
    for (size_t j = 0; j < c; ++j) {
        const T *restrict x0 = x + j * length;
        const T *restrict x1 = x0 + s, *restrict x2 = x0 + 2 * s, *restrict x3 = x0 + 3 * s;
        T *restrict yj = y + j * s;
#pragma omp simd
        for (size_t i = 0; i < s; ++i) {
            const T top = RS_POOL_MAX(x0[i], x1[i]), bottom = RS_POOL_MAX(x2[i], x3[i]);
            yj[i] = RS_POOL_MAX(bottom, top);
        }
    }
}

static void TWIN(rs_max_pool_corners_backward)(size_t c, size_t length, size_t s,
                                               const T *restrict dy, const T *restrict x,
                                               const T *restrict y, T *restrict dx)
{
    for (size_t j = 0; j < c; ++j) {
        const T *restrict x0 = x + j * length;
        const T *restrict x1 = x0 + s, *restrict x2 = x0 + 2 * s; /* the last corner: the rest */
        const T *restrict yj = y + j * s, *restrict dyj = dy + j * s;
        T *restrict d0 = dx + j * length;
        T *restrict d1 = d0 + s, *restrict d2 = d0 + 2 * s, *restrict d3 = d0 + 3 * s;
#pragma omp simd
        for (size_t i = 0; i < s; ++i) {
            /* what is left of the gradient passes corner by corner; selects of T only, so the
             * loop vectorizes in every variant (SSE2's too) */
            const T m = yj[i], g = dyj[i];
            const T left1 = x0[i] == m ? (T)0 : g, left2 = x1[i] == m ? (T)0 : left1;
            d0[i] = x0[i] == m ? g : (T)0;
            d1[i] = x1[i] == m ? left1 : (T)0;
            d2[i] = x2[i] == m ? left2 : (T)0;
            d3[i] = x2[i] == m ? (T)0 : left2;
        }
        for (size_t i = 4 * s; i < length; ++i)
            d0[i] = (T)0;
    }
}
