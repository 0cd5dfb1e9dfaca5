/* Includes the template RS_TEMPLATE once for float (T float, SUF f32, SQRT sqrtf, EXP expf)
 * and once for double (T double, SUF f64, SQRT sqrt, EXP exp). Private to the C sources. */
#ifndef RS_TEMPLATE
#error "define RS_TEMPLATE (the template's file name) before including each_type.h"
#endif

#define T float
#define SUF f32
#define SQRT sqrtf
#define EXP expf
#include RS_TEMPLATE
#undef T
#undef SUF
#undef SQRT
#undef EXP

#define T double
#define SUF f64
#define SQRT sqrt
#define EXP exp
#include RS_TEMPLATE
#undef T
#undef SUF
#undef SQRT
#undef EXP
