/* Names of the twins and their instruction-set variants.
 *
 * The template files (batchnorm_impl.h, optim_impl.h) hold one body per kernel and are
 * included once per instruction set and type (each_isa.h, each_type.h), with ISA, T and
 * SUF defined (GSL's pattern), so debuggers, sanitizers and coverage see their real lines.
 *   TYPED(name)  name with the type's suffix: rs_adam_update_f32 for TYPED(rs_adam_update)
 *                while SUF is f32 (the public names, kernels.h);
 *   TWIN(name)   also with the instruction set's: adam_update_f32_avx2 while ISA is avx2
 *                (the variants, private to one translation unit).
 * Private to the C sources: not part of the API in kernels.h. */
#ifndef RESEARCH_TWIN_H
#define RESEARCH_TWIN_H

#define RS_PASTE_(name, suffix) name##_##suffix
#define RS_PASTE(name, suffix) RS_PASTE_(name, suffix)
#define TYPED(name) RS_PASTE(name, SUF)
#define TWIN(name) RS_PASTE(RS_PASTE(name, SUF), ISA)

#endif
