/* Pooling kernels: the CNN's 2x2 max pooling over window corners.
 *
 * One body per kernel in pool_impl.h, compiled once per instruction set and type
 * (each_isa.h); the public functions of pool_api.h call the variant their isa argument
 * names.
 */
#include "isa.h"

/* numpy's maximum: a NaN in either wins, so a NaN activation is not hidden by the pooling. */
#define RS_POOL_MAX(a, b) ((a) >= (b) || (a) != (a) ? (a) : (b))

#define RS_TEMPLATE "pool_impl.h"
#include "each_isa.h"
#undef RS_TEMPLATE

#define RS_TEMPLATE "pool_api.h"
#include "each_type.h"
#undef RS_TEMPLATE
