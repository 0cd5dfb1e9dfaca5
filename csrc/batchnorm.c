/* Batch normalization kernels: training forward, inference forward, backward.
 *
 * One body per kernel in batchnorm_impl.h, included here once for float (_f32) and once
 * for double (_f64); the algorithm is described there.
 */
#include <math.h>
#include "clones.h"
#include "kernels.h"
#include "twin.h"

#define T float
#define SUF f32
#include "batchnorm_impl.h"
#undef T
#undef SUF

#define T double
#define SUF f64
#include "batchnorm_impl.h"
#undef T
#undef SUF
