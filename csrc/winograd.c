/* Winograd kernels: the transforms of the CNN's 3x3 convolutions, F(2x2, 3x3).
 *
 * One body per kernel in winograd_impl.h, compiled once per instruction set and type
 * (each_isa.h); the public functions of winograd_api.h call the variant their isa argument
 * names.
 */
#include "isa.h"

/* Values of the innermost axis a loop takes at once: the stack holds a chunk of zeros (the
 * padding) and the backward's 16 rows of one tile. */
#define RS_WINO_CHUNK 64

#define RS_TEMPLATE "winograd_impl.h"
#include "each_isa.h"
#undef RS_TEMPLATE

#define RS_TEMPLATE "winograd_api.h"
#include "each_type.h"
#undef RS_TEMPLATE
