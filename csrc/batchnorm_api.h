/* The public batchnorm kernels of one type (kernels.h): each calls the variant its isa
 * argument names (isa.h). Included once per type by batchnorm.c, after the variants. */
#if !defined(T) || !defined(SUF)
#error "define T and SUF before including batchnorm_api.h"
#endif

void TYPED(rs_batchnorm_forward)(int isa, size_t n, size_t c, size_t inner,
                                 const T *restrict x, const T *restrict gamma,
                                 const T *restrict beta, T eps, T momentum,
                                 T *restrict running_mean, T *restrict running_var,
                                 T *restrict y, T *restrict mean, T *restrict invstd)
{
    RS_ISA_CALL(isa, rs_batchnorm_forward,
                (n, c, inner, x, gamma, beta, eps, momentum, running_mean, running_var, y, mean,
                 invstd));
}

void TYPED(rs_batchnorm_relu_forward)(int isa, size_t n, size_t c, size_t inner,
                                      const T *restrict x, const T *restrict gamma,
                                      const T *restrict beta, T eps, T momentum,
                                      T *restrict running_mean, T *restrict running_var,
                                      T *restrict y, T *restrict mean, T *restrict invstd)
{
    RS_ISA_CALL(isa, rs_batchnorm_relu_forward,
                (n, c, inner, x, gamma, beta, eps, momentum, running_mean, running_var, y, mean,
                 invstd));
}

void TYPED(rs_batchnorm_inference)(int isa, size_t n, size_t c, size_t inner,
                                   const T *restrict x, const T *restrict gamma,
                                   const T *restrict beta, const T *restrict running_mean,
                                   const T *restrict running_var, T eps, T *restrict y)
{
    RS_ISA_CALL(isa, rs_batchnorm_inference,
                (n, c, inner, x, gamma, beta, running_mean, running_var, eps, y));
}

void TYPED(rs_batchnorm_relu_inference)(int isa, size_t n, size_t c, size_t inner,
                                        const T *restrict x, const T *restrict gamma,
                                        const T *restrict beta,
                                        const T *restrict running_mean,
                                        const T *restrict running_var, T eps, T *restrict y)
{
    RS_ISA_CALL(isa, rs_batchnorm_relu_inference,
                (n, c, inner, x, gamma, beta, running_mean, running_var, eps, y));
}

void TYPED(rs_batchnorm_backward)(int isa, size_t n, size_t c, size_t inner,
                                  const T *restrict dy, const T *restrict x,
                                  const T *restrict gamma, const T *restrict mean,
                                  const T *restrict invstd, T *restrict dx,
                                  T *restrict dgamma, T *restrict dbeta)
{
    RS_ISA_CALL(isa, rs_batchnorm_backward,
                (n, c, inner, dy, x, gamma, mean, invstd, dx, dgamma, dbeta));
}

void TYPED(rs_batchnorm_relu_backward)(int isa, size_t n, size_t c, size_t inner,
                                       const T *restrict dy, const T *restrict y,
                                       const T *restrict x, const T *restrict gamma,
                                       const T *restrict mean, const T *restrict invstd,
                                       T *restrict dx, T *restrict dgamma,
                                       T *restrict dbeta)
{
    RS_ISA_CALL(isa, rs_batchnorm_relu_backward,
                (n, c, inner, dy, y, x, gamma, mean, invstd, dx, dgamma, dbeta));
}
