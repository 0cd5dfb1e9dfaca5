/* Which instruction-set variants this build has and this CPU runs (kernels.h). */
#include "isa.h"

int rs_isa_supported(int isa)
{
    if (isa == RS_ISA_BASELINE)
        return 1;
#if RS_WIDE_ISAS
    /* libgcc's CPU model checks that the operating system saves the wide registers too. */
    __builtin_cpu_init();
    if (isa == RS_ISA_AVX2)
        return __builtin_cpu_supports("avx2") != 0;
    if (isa == RS_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    return 0;
}
