/* Optimizer update kernels: Adam (AdamW), momentum, RMSprop, SGD.
 *
 * One body per kernel in optim_impl.h, included here once for float (_f32) and once for
 * double (_f64).
 */
#include <math.h>
#include "clones.h"
#include "kernels.h"
#include "twin.h"

#define T float
#define SUF f32
#define SQRT sqrtf
#include "optim_impl.h"
#undef T
#undef SUF
#undef SQRT

#define T double
#define SUF f64
#define SQRT sqrt
#include "optim_impl.h"
#undef T
#undef SUF
#undef SQRT
