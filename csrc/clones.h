/* RS_CLONES marks a function with hot loops: on x86-64 with glibc it is also compiled for
 * AVX2 and the variant is picked once at load time (target_clones, an ifunc), so the build
 * stays portable (-O3, no -march) while AVX2 machines get twice the vector width.
 * Private to the C sources: not part of the API in kernels.h. */
#ifndef RESEARCH_CLONES_H
#define RESEARCH_CLONES_H

#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define RS_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef RS_CLONES
#define RS_CLONES
#endif

#endif
