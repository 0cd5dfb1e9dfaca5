/* The public loss kernels of one type (kernels.h): each calls the variant its isa argument
 * names (isa.h). Included once per type by loss.c, after the variants. */
#if !defined(T) || !defined(SUF)
#error "define T and SUF before including loss_api.h"
#endif

void TYPED(rs_softmax_cross_entropy)(int isa, size_t n, size_t k, const T *restrict s,
                                     const long long *restrict y, double scale,
                                     T *restrict loss, T *restrict hit, T *restrict ds)
{
    RS_ISA_CALL(isa, rs_softmax_cross_entropy, (n, k, s, y, scale, loss, hit, ds));
}
