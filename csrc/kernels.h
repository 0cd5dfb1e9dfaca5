/* research kernels: batch normalization and optimizer updates.
 *
 * The whole C API in one header, read by build.py (cffi cdef) and by the C tests.
 * Every function comes in a float (_f32) and a double (_f64) twin with the same body.
 * Conventions:
 *   - x is laid out as (n, c, inner), C-contiguous: inner = 1 for (N, C) input and
 *     H*W (or the product of the spatial axes) for (N, C, *spatial) input. Statistics
 *     are per channel over the n * inner values of that channel.
 *   - Sizes are explicit; nothing is allocated; no global state; no I/O.
 *   - Reductions accumulate in double. Arrays marked restrict must not overlap.
 */
#ifndef RESEARCH_KERNELS_H
#define RESEARCH_KERNELS_H

#include <stddef.h>

/* Batchnorm training forward.
 *   mean[j]   = mean of x[:, j, :]
 *   var[j]    = biased variance of x[:, j, :]
 *   invstd[j] = 1 / sqrt(var[j] + eps)
 *   y         = gamma[j] * (x - mean[j]) * invstd[j] + beta[j]
 * When running_mean and running_var are not NULL they are updated in place:
 *   running_mean = (1 - momentum) * running_mean + momentum * mean
 *   running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1),  m = n * inner
 * Requires n * inner >= 2 and eps > 0. x, y: (n, c, inner); the rest: (c). */
void rs_batchnorm_forward_f32(size_t n, size_t c, size_t inner,
                              const float *x, const float *gamma, const float *beta,
                              float eps, float momentum,
                              float *running_mean, float *running_var,
                              float *y, float *mean, float *invstd);
void rs_batchnorm_forward_f64(size_t n, size_t c, size_t inner,
                              const double *x, const double *gamma, const double *beta,
                              double eps, double momentum,
                              double *running_mean, double *running_var,
                              double *y, double *mean, double *invstd);

/* Batchnorm inference forward from running statistics:
 *   y = gamma[j] * (x - running_mean[j]) / sqrt(running_var[j] + eps) + beta[j] */
void rs_batchnorm_inference_f32(size_t n, size_t c, size_t inner,
                                const float *x, const float *gamma, const float *beta,
                                const float *running_mean, const float *running_var,
                                float eps, float *y);
void rs_batchnorm_inference_f64(size_t n, size_t c, size_t inner,
                                const double *x, const double *gamma, const double *beta,
                                const double *running_mean, const double *running_var,
                                double eps, double *y);

/* Batchnorm backward from the saved mean and invstd of the training forward.
 *   xhat   = (x - mean[j]) * invstd[j],  m = n * inner
 *   dbeta[j]  = sum dy[:, j, :]
 *   dgamma[j] = sum dy * xhat
 *   dx = gamma[j] * invstd[j] / m * (m * dy - dbeta[j] - xhat * dgamma[j]) */
void rs_batchnorm_backward_f32(size_t n, size_t c, size_t inner,
                               const float *dy, const float *x, const float *gamma,
                               const float *mean, const float *invstd,
                               float *dx, float *dgamma, float *dbeta);
void rs_batchnorm_backward_f64(size_t n, size_t c, size_t inner,
                               const double *dy, const double *x, const double *gamma,
                               const double *mean, const double *invstd,
                               double *dx, double *dgamma, double *dbeta);

/* Adam (Kingma & Ba), bias-corrected, one fused pass over size elements; step >= 1.
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   p -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps)
 * With weight_decay != 0 the decay is decoupled (AdamW), applied before the update:
 *   p -= lr * weight_decay * p */
void rs_adam_update_f32(size_t size, float *param, const float *grad, float *m, float *v,
                        long long step, double lr, double beta1, double beta2, double eps,
                        double weight_decay);
void rs_adam_update_f64(size_t size, double *param, const double *grad, double *m, double *v,
                        long long step, double lr, double beta1, double beta2, double eps,
                        double weight_decay);

/* Momentum (exponentially weighted average of gradients):
 *   v = beta * v + (1 - beta) * g;  p -= lr * v */
void rs_momentum_update_f32(size_t size, float *param, const float *grad, float *velocity,
                            double lr, double beta);
void rs_momentum_update_f64(size_t size, double *param, const double *grad, double *velocity,
                            double lr, double beta);

/* RMSprop:
 *   s = beta * s + (1 - beta) * g * g;  p -= lr * g / (sqrt(s) + eps) */
void rs_rmsprop_update_f32(size_t size, float *param, const float *grad, float *sq,
                           double lr, double beta, double eps);
void rs_rmsprop_update_f64(size_t size, double *param, const double *grad, double *sq,
                           double lr, double beta, double eps);

/* Plain SGD with optional (coupled, L2) weight decay:
 *   p -= lr * (g + weight_decay * p) */
void rs_sgd_update_f32(size_t size, float *param, const float *grad,
                       double lr, double weight_decay);
void rs_sgd_update_f64(size_t size, double *param, const double *grad,
                       double lr, double weight_decay);

#endif
