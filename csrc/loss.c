/* Loss kernels: softmax cross-entropy.
 *
 * One body per kernel in loss_impl.h, compiled once per instruction set and type
 * (each_isa.h); the public functions of loss_api.h call the variant their isa argument
 * names.
 */
#include <math.h>
#include "isa.h"

#define RS_TEMPLATE "loss_impl.h"
#include "each_isa.h"
#undef RS_TEMPLATE

#define RS_TEMPLATE "loss_api.h"
#include "each_type.h"
#undef RS_TEMPLATE
