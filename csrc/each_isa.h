/* Includes the template RS_TEMPLATE for each type (each_type.h) once per instruction set,
 * with ISA defined to its name: baseline (the build's own flags: SSE2 on x86-64), and on
 * x86-64 with GCC also avx2 and avx512 (AVX-512 F, VL, BW and DQ), each under
 * `#pragma GCC target`, so the default build stays portable and the wide variants exist
 * beside it. Which one runs is the caller's choice (the isa argument of every kernel,
 * kernels.h); isa.c says which ones this CPU can run. Private to the C sources. */
#include "isa.h"

#define ISA baseline
#include "each_type.h"
#undef ISA

#if RS_WIDE_ISAS
#pragma GCC push_options
#pragma GCC target("avx2")
#define ISA avx2
#include "each_type.h"
#undef ISA
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq")
#define ISA avx512
#include "each_type.h"
#undef ISA
#pragma GCC pop_options
#endif
