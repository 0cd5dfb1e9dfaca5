/* research kernels: batch normalization (alone or fused with a ReLU), softmax cross-entropy,
 * the CNN's max pooling and Winograd transforms, optimizer updates.
 *
 * The whole C API in one header, read by build.py (cffi cdef) and by the C tests.
 * Every function comes in a float (_f32) and a double (_f64) twin with the same body (one
 * template per source file, batchnorm_impl.h and optim_impl.h, compiled once per type); the
 * twins are spelled out here, as cffi's cdef does not expand macros.
 * Conventions:
 *   - x is laid out as (n, c, inner), C-contiguous: inner = 1 for (N, C) input and
 *     H*W (or the product of the spatial axes) for (N, C, *spatial) input. Statistics
 *     are per channel over the n * inner values of that channel.
 *   - The first argument, isa, names the instruction set to run (below); then the sizes,
 *     explicit. Nothing is allocated; no global state; no I/O.
 *   - Reductions accumulate in double. Arrays are restrict: an array a function writes
 *     must not overlap any other array argument (arrays only read may).
 */
#ifndef RESEARCH_KERNELS_H
#define RESEARCH_KERNELS_H

#include <stddef.h>

/* Instruction sets. Every kernel is compiled once per set (on x86-64 with GCC; elsewhere
 * only the baseline exists) and takes the set to run as its first argument, isa: the
 * caller chooses, nothing is global. All sets give bit-identical results (the reductions
 * have a fixed order and lane count, nothing is contracted into fused multiply-adds), so
 * the choice changes only the speed. An isa the build lacks runs the baseline; an isa
 * the CPU lacks must not be passed: ask rs_isa_supported first. */
enum rs_isa { RS_ISA_BASELINE = 0, RS_ISA_AVX2 = 1, RS_ISA_AVX512 = 2 };

/* 1 when this build has the variants of isa and this CPU (and its operating system) runs
 * them, else 0. RS_ISA_AVX512 needs AVX-512 F, VL, BW and DQ. */
int rs_isa_supported(int isa);

/* Batchnorm training forward.
 *   mean[j]   = mean of x[:, j, :]
 *   var[j]    = biased variance of x[:, j, :]
 *   invstd[j] = 1 / sqrt(var[j] + eps)
 *   y         = gamma[j] * (x - mean[j]) * invstd[j] + beta[j]
 * When running_mean and running_var are not NULL they are updated in place:
 *   running_mean = (1 - momentum) * running_mean + momentum * mean
 *   running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1),  m = n * inner
 * Requires n * inner >= 2 and eps > 0. x, y: (n, c, inner); the rest: (c). */
void rs_batchnorm_forward_f32(int isa, size_t n, size_t c, size_t inner,
                              const float *restrict x, const float *restrict gamma,
                              const float *restrict beta, float eps, float momentum,
                              float *restrict running_mean, float *restrict running_var,
                              float *restrict y, float *restrict mean,
                              float *restrict invstd);
void rs_batchnorm_forward_f64(int isa, size_t n, size_t c, size_t inner,
                              const double *restrict x, const double *restrict gamma,
                              const double *restrict beta, double eps, double momentum,
                              double *restrict running_mean, double *restrict running_var,
                              double *restrict y, double *restrict mean,
                              double *restrict invstd);

/* Batchnorm inference forward from running statistics:
 *   y = gamma[j] * (x - running_mean[j]) / sqrt(running_var[j] + eps) + beta[j] */
void rs_batchnorm_inference_f32(int isa, size_t n, size_t c, size_t inner,
                                const float *restrict x, const float *restrict gamma,
                                const float *restrict beta,
                                const float *restrict running_mean,
                                const float *restrict running_var, float eps,
                                float *restrict y);
void rs_batchnorm_inference_f64(int isa, size_t n, size_t c, size_t inner,
                                const double *restrict x, const double *restrict gamma,
                                const double *restrict beta,
                                const double *restrict running_mean,
                                const double *restrict running_var, double eps,
                                double *restrict y);

/* Batchnorm backward from the saved mean and invstd of the training forward.
 *   xhat   = (x - mean[j]) * invstd[j],  m = n * inner
 *   dbeta[j]  = sum dy[:, j, :]
 *   dgamma[j] = sum dy * xhat
 *   dx = gamma[j] * invstd[j] / m * (m * dy - dbeta[j] - xhat * dgamma[j]) */
void rs_batchnorm_backward_f32(int isa, size_t n, size_t c, size_t inner,
                               const float *restrict dy, const float *restrict x,
                               const float *restrict gamma, const float *restrict mean,
                               const float *restrict invstd, float *restrict dx,
                               float *restrict dgamma, float *restrict dbeta);
void rs_batchnorm_backward_f64(int isa, size_t n, size_t c, size_t inner,
                               const double *restrict dy, const double *restrict x,
                               const double *restrict gamma, const double *restrict mean,
                               const double *restrict invstd, double *restrict dx,
                               double *restrict dgamma, double *restrict dbeta);

/* Batchnorm followed by a ReLU, fused: each is its batchnorm kernel above with the ReLU
 * applied on the way (no extra pass, no intermediate array), with the same arithmetic, so
 * the results equal the unfused composition bit for bit. relu(v) = v < 0 ? 0 : v (NaN
 * stays NaN).
 *
 * Training forward: as rs_batchnorm_forward (same statistics, running statistics updated
 * the same way, the same mean and invstd saved for the backward), then
 *   y = relu(gamma[j] * (x - mean[j]) * invstd[j] + beta[j])
 * Requires n * inner >= 2 and eps > 0. x, y: (n, c, inner); the rest: (c). */
void rs_batchnorm_relu_forward_f32(int isa, size_t n, size_t c, size_t inner,
                                   const float *restrict x, const float *restrict gamma,
                                   const float *restrict beta, float eps, float momentum,
                                   float *restrict running_mean,
                                   float *restrict running_var, float *restrict y,
                                   float *restrict mean, float *restrict invstd);
void rs_batchnorm_relu_forward_f64(int isa, size_t n, size_t c, size_t inner,
                                   const double *restrict x, const double *restrict gamma,
                                   const double *restrict beta, double eps, double momentum,
                                   double *restrict running_mean,
                                   double *restrict running_var, double *restrict y,
                                   double *restrict mean, double *restrict invstd);

/* Inference forward from running statistics, then the ReLU:
 *   y = relu(gamma[j] * (x - running_mean[j]) / sqrt(running_var[j] + eps) + beta[j]) */
void rs_batchnorm_relu_inference_f32(int isa, size_t n, size_t c, size_t inner,
                                     const float *restrict x, const float *restrict gamma,
                                     const float *restrict beta,
                                     const float *restrict running_mean,
                                     const float *restrict running_var, float eps,
                                     float *restrict y);
void rs_batchnorm_relu_inference_f64(int isa, size_t n, size_t c, size_t inner,
                                     const double *restrict x, const double *restrict gamma,
                                     const double *restrict beta,
                                     const double *restrict running_mean,
                                     const double *restrict running_var, double eps,
                                     double *restrict y);

/* Backward of the fused forward: dy is the gradient w.r.t. its output y (the ReLU's
 * output, as the forward wrote it); the ReLU passes dy where y > 0. With
 *   g = (y > 0 ? dy : 0)
 * the outputs are those of rs_batchnorm_backward on g (g is never stored: both passes
 * read dy and y and mask on the fly):
 *   dbeta[j] = sum g[:, j, :],  dgamma[j] = sum g * xhat,
 *   dx = gamma[j] * invstd[j] / m * (m * g - dbeta[j] - xhat * dgamma[j])
 * dy, y, x, dx: (n, c, inner); gamma, mean, invstd, dgamma, dbeta: (c). */
void rs_batchnorm_relu_backward_f32(int isa, size_t n, size_t c, size_t inner,
                                    const float *restrict dy, const float *restrict y,
                                    const float *restrict x, const float *restrict gamma,
                                    const float *restrict mean,
                                    const float *restrict invstd, float *restrict dx,
                                    float *restrict dgamma, float *restrict dbeta);
void rs_batchnorm_relu_backward_f64(int isa, size_t n, size_t c, size_t inner,
                                    const double *restrict dy, const double *restrict y,
                                    const double *restrict x, const double *restrict gamma,
                                    const double *restrict mean,
                                    const double *restrict invstd, double *restrict dx,
                                    double *restrict dgamma, double *restrict dbeta);

/* Softmax cross-entropy of n samples over k classes (k >= 1): logits s (n, k), row-major,
 * labels y (n,) in [0, k) (the caller checks them). Per row i, with p = softmax(s[i]):
 *   loss[i]  = log sum_c exp(s[i][c]) - s[i][y[i]]   (row maximum subtracted first)
 *   hit[i]   = 1 when the row's first maximum is at y[i], else 0
 *   ds[i][c] = scale * (p[c] - [c == y[i]])   (scale = 1 / n: the mean loss's gradient)
 * exp(s - max) is computed in the storage type, the sums, log and gradient in double; exp
 * and log are the C library's. loss, hit: (n); ds: (n, k). */
void rs_softmax_cross_entropy_f32(int isa, size_t n, size_t k, const float *restrict s,
                                  const long long *restrict y, double scale,
                                  float *restrict loss, float *restrict hit,
                                  float *restrict ds);
void rs_softmax_cross_entropy_f64(int isa, size_t n, size_t k, const double *restrict s,
                                  const long long *restrict y, double scale,
                                  double *restrict loss, double *restrict hit,
                                  double *restrict ds);

/* 2x2 max pooling with stride 2 over window corners, the layout of the CNN's work arrays
 * (research/nn/cnn.py): row j of x (c rows of `length` values) holds the (0, 0) corners of
 * the channel's s windows, then the (0, 1), (1, 0) and (1, 1) corners, then values no window
 * covers (length >= 4 * s). max(a, b) is numpy's maximum (a NaN wins).
 *   y[j][i] = max(max(x2, x3), max(x0, x1)),  xq = x[j][q * s + i]
 * Backward: each window's gradient dy[j][i] goes to its first corner (in the order above)
 * equal to y[j][i], or to the last corner when none is (a NaN maximum); dx is zero
 * everywhere else, the values no window covers included.
 * x, dx: (c, length); y, dy: (c, s). */
void rs_max_pool_corners_forward_f32(int isa, size_t c, size_t length, size_t s,
                                     const float *restrict x, float *restrict y);
void rs_max_pool_corners_forward_f64(int isa, size_t c, size_t length, size_t s,
                                     const double *restrict x, double *restrict y);
void rs_max_pool_corners_backward_f32(int isa, size_t c, size_t length, size_t s,
                                      const float *restrict dy, const float *restrict x,
                                      const float *restrict y, float *restrict dx);
void rs_max_pool_corners_backward_f64(int isa, size_t c, size_t length, size_t s,
                                      const double *restrict dy, const double *restrict x,
                                      const double *restrict y, double *restrict dx);

/* Winograd F(2x2, 3x3) transforms (Lavin & Gray), the CNN's 3x3 "same" convolutions of even
 * images as 16 matmuls (research/nn/cnn.py); with the 4x4 matrices B^T, A^T (2x4) of F(2, 3):
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  A^T = [1 1 1 0; 0 1 -1 -1]
 * Input: x (c, h, w, n), h and w even, n values a pixel (the batch, innermost); tile t =
 * ti * (w / 2) + tj covers the rows 2 * ti - 1 .. 2 * ti + 2 and the columns 2 * tj - 1 ..
 * 2 * tj + 2 (zero outside the image). v (16, c, h * w / 4, n):
 *   v[p][j][t][i] = (B^T d B)[p], d the 4x4 tile t of channel j, lane i; p = 4 * row + column
 * Backward: dx (c, h, w, n) = the sum over tiles of B dv B^T where each tile lies (the
 * adjoint), the tiles added in order.
 * Output: m (16, k, length) -> y (k, 4, length), the 2x2 output tile's a = 2 * row + column:
 *   y[o][a][e] = (A^T m A)[a],  m the 16 values m[p][o][e]
 * Backward: dm[p][o][e] = (A dy A^T)[p]. Sums and differences in a fixed order: every
 * instruction set gives the same bits. */
void rs_winograd_input_forward_f32(int isa, size_t c, size_t h, size_t w, size_t n,
                                   const float *restrict x, float *restrict v);
void rs_winograd_input_forward_f64(int isa, size_t c, size_t h, size_t w, size_t n,
                                   const double *restrict x, double *restrict v);
void rs_winograd_input_backward_f32(int isa, size_t c, size_t h, size_t w, size_t n,
                                    const float *restrict dv, float *restrict dx);
void rs_winograd_input_backward_f64(int isa, size_t c, size_t h, size_t w, size_t n,
                                    const double *restrict dv, double *restrict dx);
void rs_winograd_output_forward_f32(int isa, size_t k, size_t length, const float *restrict m,
                                    float *restrict y);
void rs_winograd_output_forward_f64(int isa, size_t k, size_t length, const double *restrict m,
                                    double *restrict y);
void rs_winograd_output_backward_f32(int isa, size_t k, size_t length, const float *restrict dy,
                                     float *restrict dm);
void rs_winograd_output_backward_f64(int isa, size_t k, size_t length, const double *restrict dy,
                                     double *restrict dm);

/* Adam (Kingma & Ba), bias-corrected, one fused pass over size elements; step >= 1.
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   p -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps)
 * With weight_decay != 0 the decay is decoupled (AdamW), applied before the update:
 *   p -= lr * weight_decay * p */
void rs_adam_update_f32(int isa, size_t size, float *restrict param,
                        const float *restrict grad, float *restrict m, float *restrict v,
                        long long step, double lr, double beta1, double beta2, double eps,
                        double weight_decay);
void rs_adam_update_f64(int isa, size_t size, double *restrict param,
                        const double *restrict grad, double *restrict m, double *restrict v,
                        long long step, double lr, double beta1, double beta2, double eps,
                        double weight_decay);

/* Momentum (exponentially weighted average of gradients):
 *   v = beta * v + (1 - beta) * g;  p -= lr * v */
void rs_momentum_update_f32(int isa, size_t size, float *restrict param,
                            const float *restrict grad, float *restrict velocity, double lr,
                            double beta);
void rs_momentum_update_f64(int isa, size_t size, double *restrict param,
                            const double *restrict grad, double *restrict velocity,
                            double lr, double beta);

/* RMSprop:
 *   s = beta * s + (1 - beta) * g * g;  p -= lr * g / (sqrt(s) + eps) */
void rs_rmsprop_update_f32(int isa, size_t size, float *restrict param,
                           const float *restrict grad, float *restrict sq, double lr,
                           double beta, double eps);
void rs_rmsprop_update_f64(int isa, size_t size, double *restrict param,
                           const double *restrict grad, double *restrict sq, double lr,
                           double beta, double eps);

/* Plain SGD with optional (coupled, L2) weight decay:
 *   p -= lr * (g + weight_decay * p) */
void rs_sgd_update_f32(int isa, size_t size, float *restrict param,
                       const float *restrict grad, double lr, double weight_decay);
void rs_sgd_update_f64(int isa, size_t size, double *restrict param,
                       const double *restrict grad, double lr, double weight_decay);

/* The four updates above over many parameter arrays in one call (the optimizer plans': on
 * small arrays the call, not the update, is most of the cost). arrays[i] holds the size and
 * the arrays of update i, named as the single-array kernel names them; update i is that
 * kernel's call on them with the scalars given, made for i = 0 .. count - 1 in order, so the
 * results are the same calls' bit for bit. The arrays of one update follow the single
 * kernel's rules (an array it writes overlaps no other of that update); different updates
 * may share arrays, as they run one after another. */
struct rs_adam_update_arrays_f32 {
    size_t size;
    float *param;
    const float *grad;
    float *m;
    float *v;
};
struct rs_adam_update_arrays_f64 {
    size_t size;
    double *param;
    const double *grad;
    double *m;
    double *v;
};
void rs_adam_updates_f32(int isa, size_t count, const struct rs_adam_update_arrays_f32 *arrays,
                         long long step, double lr, double beta1, double beta2, double eps,
                         double weight_decay);
void rs_adam_updates_f64(int isa, size_t count, const struct rs_adam_update_arrays_f64 *arrays,
                         long long step, double lr, double beta1, double beta2, double eps,
                         double weight_decay);

struct rs_momentum_update_arrays_f32 {
    size_t size;
    float *param;
    const float *grad;
    float *velocity;
};
struct rs_momentum_update_arrays_f64 {
    size_t size;
    double *param;
    const double *grad;
    double *velocity;
};
void rs_momentum_updates_f32(int isa, size_t count,
                             const struct rs_momentum_update_arrays_f32 *arrays, double lr,
                             double beta);
void rs_momentum_updates_f64(int isa, size_t count,
                             const struct rs_momentum_update_arrays_f64 *arrays, double lr,
                             double beta);

struct rs_rmsprop_update_arrays_f32 {
    size_t size;
    float *param;
    const float *grad;
    float *sq;
};
struct rs_rmsprop_update_arrays_f64 {
    size_t size;
    double *param;
    const double *grad;
    double *sq;
};
void rs_rmsprop_updates_f32(int isa, size_t count,
                            const struct rs_rmsprop_update_arrays_f32 *arrays, double lr,
                            double beta, double eps);
void rs_rmsprop_updates_f64(int isa, size_t count,
                            const struct rs_rmsprop_update_arrays_f64 *arrays, double lr,
                            double beta, double eps);

struct rs_sgd_update_arrays_f32 {
    size_t size;
    float *param;
    const float *grad;
};
struct rs_sgd_update_arrays_f64 {
    size_t size;
    double *param;
    const double *grad;
};
void rs_sgd_updates_f32(int isa, size_t count, const struct rs_sgd_update_arrays_f32 *arrays,
                        double lr, double weight_decay);
void rs_sgd_updates_f64(int isa, size_t count, const struct rs_sgd_update_arrays_f64 *arrays,
                        double lr, double weight_decay);

/* The four batched updates with their scalars in one array, in the order above (Adam's step
 * as a double, an integer from 1 to 2**53, which a double holds exactly): one signature for
 * all, so the plans' step (csrc/step.c) calls whichever a plan binds through one pointer type.
 * `arrays` points to `count` structs of the update's type. */
void rs_adam_updates_packed_f32(int isa, size_t count, const void *arrays, const double *scalars);
void rs_adam_updates_packed_f64(int isa, size_t count, const void *arrays, const double *scalars);
void rs_momentum_updates_packed_f32(int isa, size_t count, const void *arrays, const double *scalars);
void rs_momentum_updates_packed_f64(int isa, size_t count, const void *arrays, const double *scalars);
void rs_rmsprop_updates_packed_f32(int isa, size_t count, const void *arrays, const double *scalars);
void rs_rmsprop_updates_packed_f64(int isa, size_t count, const void *arrays, const double *scalars);
void rs_sgd_updates_packed_f32(int isa, size_t count, const void *arrays, const double *scalars);
void rs_sgd_updates_packed_f64(int isa, size_t count, const void *arrays, const double *scalars);

#endif
