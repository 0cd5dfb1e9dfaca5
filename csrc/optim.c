/* Optimizer update kernels: Adam (AdamW), momentum, RMSprop, SGD.
 *
 * One body per kernel in optim_impl.h, compiled once per instruction set and type
 * (each_isa.h); the public functions of optim_api.h call the variant their isa argument
 * names.
 */
#include <math.h>
#include "isa.h"

#define RS_TEMPLATE "optim_impl.h"
#include "each_isa.h"
#undef RS_TEMPLATE

#define RS_TEMPLATE "optim_api.h"
#include "each_type.h"
#undef RS_TEMPLATE
