/* TWIN(name): name with the suffix of the twin being compiled, rs_adam_update_f32 for
 * TWIN(rs_adam_update) while SUF is f32. The template files (batchnorm_impl.h, optim_impl.h)
 * hold one body per kernel and are included once per type, with T and SUF defined
 * (GSL's pattern), so debuggers, sanitizers and coverage see their real lines.
 * Private to the C sources: not part of the API in kernels.h. */
#ifndef RESEARCH_TWIN_H
#define RESEARCH_TWIN_H

#define RS_PASTE_(name, suffix) name##_##suffix
#define RS_PASTE(name, suffix) RS_PASTE_(name, suffix)
#define TWIN(name) RS_PASTE(name, SUF)

#endif
