/* Optimizer update kernels: one fused pass over memory each, in place.
 *
 * The body of the variants of every instruction set and type, included by optim.c through
 * each_isa.h with ISA, T (the storage type), SUF (the suffix) and SQRT (the square root of
 * T) defined; TWIN(name) (twin.h) appends both suffixes to a name.
 *
 * Hyperparameters arrive as double; per-call constants (bias corrections, 1 - beta)
 * are computed once in double, then used in the storage type inside the loop.
 *
 * The wide variants (avx2, avx512) let the square root and the divide of Adam and RMSprop
 * keep up with memory. Every operation is elementwise, so all variants give the same bits.
 * The loops vectorize only when sqrt need not set errno: -fno-math-errno must be among the
 * compile flags (build.py); without it they are correct but scalar, about 3x slower.
 */
#if !defined(T) || !defined(SUF) || !defined(SQRT)
#error "define T, SUF and SQRT (e.g. float, f32, sqrtf) before including optim_impl.h"
#endif

static void TWIN(rs_adam_update)(size_t size, T *restrict param, const T *restrict grad,
                                 T *restrict m, T *restrict v, long long step, double lr,
                                 double beta1, double beta2, double eps,
                                 double weight_decay)
{
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    /* p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
     *    = step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps) */
    const T step_size = (T)(lr / bc1);
    const T inv_sqrt_bc2 = (T)(1.0 / sqrt(bc2));
    const T b1 = (T)beta1, c1 = (T)(1.0 - beta1);
    const T b2 = (T)beta2, c2 = (T)(1.0 - beta2);
    const T e = (T)eps;
    const T decay = (T)(1.0 - lr * weight_decay);
    for (size_t i = 0; i < size; ++i) {
        const T g = grad[i];
        const T mi = b1 * m[i] + c1 * g;
        const T vi = b2 * v[i] + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = param[i] * decay - step_size * mi / (SQRT(vi) * inv_sqrt_bc2 + e);
    }
}

static void TWIN(rs_momentum_update)(size_t size, T *restrict param, const T *restrict grad,
                                     T *restrict velocity, double lr, double beta)
{
    const T b = (T)beta, c = (T)(1.0 - beta), a = (T)lr;
    for (size_t i = 0; i < size; ++i) {
        const T vi = b * velocity[i] + c * grad[i];
        velocity[i] = vi;
        param[i] -= a * vi;
    }
}

static void TWIN(rs_rmsprop_update)(size_t size, T *restrict param, const T *restrict grad,
                                    T *restrict sq, double lr, double beta, double eps)
{
    const T b = (T)beta, c = (T)(1.0 - beta), a = (T)lr, e = (T)eps;
    for (size_t i = 0; i < size; ++i) {
        const T g = grad[i];
        const T si = b * sq[i] + c * g * g;
        sq[i] = si;
        param[i] -= a * g / (SQRT(si) + e);
    }
}

static void TWIN(rs_sgd_update)(size_t size, T *restrict param, const T *restrict grad,
                                double lr, double weight_decay)
{
    const T a = (T)lr, decay = (T)(1.0 - lr * weight_decay);
    for (size_t i = 0; i < size; ++i)
        param[i] = param[i] * decay - a * grad[i];
}
