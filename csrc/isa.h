/* The instruction-set variants: whether this compiler builds the wide ones, and the call of
 * the variant an isa argument names.
 *
 * RS_WIDE_ISAS is 1 where the avx2 and avx512 variants are compiled (x86-64 with GCC,
 * whose `#pragma GCC target` each_isa.h uses); elsewhere only baseline exists and every isa
 * runs it. RS_ISA_CALL(isa, name, args) calls name's variant for isa (name_f32_avx2 ...),
 * the baseline for any isa this build lacks, so no value can reach an instruction the
 * build did not compile. Whether the CPU runs it is the caller's to check
 * (rs_isa_supported). Private to the C sources. */
#ifndef RESEARCH_ISA_H
#define RESEARCH_ISA_H

#include "kernels.h"
#include "twin.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RS_WIDE_ISAS 1
#else
#define RS_WIDE_ISAS 0
#endif

#define RS_VARIANT(name, isa) RS_PASTE(TYPED(name), isa)

#if RS_WIDE_ISAS
#define RS_ISA_CALL(isa, name, args)                                                       \
    do {                                                                                   \
        if ((isa) == RS_ISA_AVX512)                                                        \
            RS_VARIANT(name, avx512) args;                                                 \
        else if ((isa) == RS_ISA_AVX2)                                                     \
            RS_VARIANT(name, avx2) args;                                                   \
        else                                                                               \
            RS_VARIANT(name, baseline) args;                                               \
    } while (0)
#else
#define RS_ISA_CALL(isa, name, args) ((void)(isa), RS_VARIANT(name, baseline) args)
#endif

#endif
