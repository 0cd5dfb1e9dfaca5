/* The public optimizer kernels of one type (kernels.h): each calls the variant its isa
 * argument names (isa.h); the batched ones call those, once per struct. Included once per
 * type by optim.c, after the variants. */
#if !defined(T) || !defined(SUF)
#error "define T and SUF before including optim_api.h"
#endif

void TYPED(rs_adam_update)(int isa, size_t size, T *restrict param, const T *restrict grad,
                           T *restrict m, T *restrict v, long long step, double lr,
                           double beta1, double beta2, double eps, double weight_decay)
{
    RS_ISA_CALL(isa, rs_adam_update,
                (size, param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay));
}

void TYPED(rs_momentum_update)(int isa, size_t size, T *restrict param,
                               const T *restrict grad, T *restrict velocity, double lr,
                               double beta)
{
    RS_ISA_CALL(isa, rs_momentum_update, (size, param, grad, velocity, lr, beta));
}

void TYPED(rs_rmsprop_update)(int isa, size_t size, T *restrict param,
                              const T *restrict grad, T *restrict sq, double lr,
                              double beta, double eps)
{
    RS_ISA_CALL(isa, rs_rmsprop_update, (size, param, grad, sq, lr, beta, eps));
}

void TYPED(rs_sgd_update)(int isa, size_t size, T *restrict param, const T *restrict grad,
                          double lr, double weight_decay)
{
    RS_ISA_CALL(isa, rs_sgd_update, (size, param, grad, lr, weight_decay));
}

/* The batched updates: update i on arrays[i], in order, each the single-array call above. */
void TYPED(rs_adam_updates)(int isa, size_t count,
                            const struct TYPED(rs_adam_update_arrays) *arrays, long long step,
                            double lr, double beta1, double beta2, double eps,
                            double weight_decay)
{
    for (size_t i = 0; i < count; ++i)
        TYPED(rs_adam_update)(isa, arrays[i].size, arrays[i].param, arrays[i].grad,
                              arrays[i].m, arrays[i].v, step, lr, beta1, beta2, eps,
                              weight_decay);
}

void TYPED(rs_momentum_updates)(int isa, size_t count,
                                const struct TYPED(rs_momentum_update_arrays) *arrays,
                                double lr, double beta)
{
    for (size_t i = 0; i < count; ++i)
        TYPED(rs_momentum_update)(isa, arrays[i].size, arrays[i].param, arrays[i].grad,
                                  arrays[i].velocity, lr, beta);
}

void TYPED(rs_rmsprop_updates)(int isa, size_t count,
                               const struct TYPED(rs_rmsprop_update_arrays) *arrays,
                               double lr, double beta, double eps)
{
    for (size_t i = 0; i < count; ++i)
        TYPED(rs_rmsprop_update)(isa, arrays[i].size, arrays[i].param, arrays[i].grad,
                                 arrays[i].sq, lr, beta, eps);
}

void TYPED(rs_sgd_updates)(int isa, size_t count,
                           const struct TYPED(rs_sgd_update_arrays) *arrays, double lr,
                           double weight_decay)
{
    for (size_t i = 0; i < count; ++i)
        TYPED(rs_sgd_update)(isa, arrays[i].size, arrays[i].param, arrays[i].grad, lr,
                             weight_decay);
}

/* The batched updates above with their scalars packed in one array (kernels.h). */
void TYPED(rs_adam_updates_packed)(int isa, size_t count, const void *arrays,
                                   const double *scalars)
{
    TYPED(rs_adam_updates)(isa, count, arrays, (long long)scalars[0], scalars[1], scalars[2],
                           scalars[3], scalars[4], scalars[5]);
}

void TYPED(rs_momentum_updates_packed)(int isa, size_t count, const void *arrays,
                                       const double *scalars)
{
    TYPED(rs_momentum_updates)(isa, count, arrays, scalars[0], scalars[1]);
}

void TYPED(rs_rmsprop_updates_packed)(int isa, size_t count, const void *arrays,
                                      const double *scalars)
{
    TYPED(rs_rmsprop_updates)(isa, count, arrays, scalars[0], scalars[1], scalars[2]);
}

void TYPED(rs_sgd_updates_packed)(int isa, size_t count, const void *arrays,
                                  const double *scalars)
{
    TYPED(rs_sgd_updates)(isa, count, arrays, scalars[0], scalars[1]);
}
