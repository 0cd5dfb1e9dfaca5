/* The public pooling kernels of one type (kernels.h): each calls the variant its isa argument
 * names (isa.h). Included once per type by pool.c, after the variants. */
#if !defined(T) || !defined(SUF)
#error "define T and SUF before including pool_api.h"
#endif

void TYPED(rs_max_pool_corners_forward)(int isa, size_t c, size_t length, size_t s,
                                        const T *restrict x, T *restrict y)
{
    RS_ISA_CALL(isa, rs_max_pool_corners_forward, (c, length, s, x, y));
}

void TYPED(rs_max_pool_corners_backward)(int isa, size_t c, size_t length, size_t s,
                                         const T *restrict dy, const T *restrict x,
                                         const T *restrict y, T *restrict dx)
{
    RS_ISA_CALL(isa, rs_max_pool_corners_backward, (c, length, s, dy, x, y, dx));
}
