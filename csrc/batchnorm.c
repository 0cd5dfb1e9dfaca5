/* Batch normalization kernels: training forward, inference forward, backward, alone or
 * fused with a ReLU.
 *
 * One body per kernel in batchnorm_impl.h (the algorithm is described there), compiled
 * once per instruction set and type (each_isa.h); the public functions of
 * batchnorm_api.h call the variant their isa argument names.
 */
#include <math.h>
#include <stdint.h>
#include "isa.h"

#define RS_TEMPLATE "batchnorm_impl.h"
#include "each_isa.h"
#undef RS_TEMPLATE

#define RS_TEMPLATE "batchnorm_api.h"
#include "each_type.h"
#undef RS_TEMPLATE
