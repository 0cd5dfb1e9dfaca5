/* The public Winograd transforms of one type (kernels.h): each calls the variant its isa
 * argument names (isa.h). Included once per type by winograd.c, after the variants. */
#if !defined(T) || !defined(SUF)
#error "define T and SUF before including winograd_api.h"
#endif

void TYPED(rs_winograd_input_forward)(int isa, size_t c, size_t h, size_t w, size_t n,
                                      const T *restrict x, T *restrict v)
{
    RS_ISA_CALL(isa, rs_winograd_input_forward, (c, h, w, n, x, v));
}

void TYPED(rs_winograd_input_backward)(int isa, size_t c, size_t h, size_t w, size_t n,
                                       const T *restrict dv, T *restrict dx)
{
    RS_ISA_CALL(isa, rs_winograd_input_backward, (c, h, w, n, dv, dx));
}

void TYPED(rs_winograd_output_forward)(int isa, size_t k, size_t length, const T *restrict m,
                                       T *restrict y)
{
    RS_ISA_CALL(isa, rs_winograd_output_forward, (k, length, m, y));
}

void TYPED(rs_winograd_output_backward)(int isa, size_t k, size_t length, const T *restrict dy,
                                        T *restrict dm)
{
    RS_ISA_CALL(isa, rs_winograd_output_backward, (k, length, dy, dm));
}
