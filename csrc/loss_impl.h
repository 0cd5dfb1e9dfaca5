/* Softmax cross-entropy: loss, accuracy and gradient of a classifier's logits in one pass.
 *
 * The body of the variants of every instruction set and type, included by loss.c through
 * each_isa.h with ISA, T and SUF defined; TWIN(name) (twin.h) appends both suffixes.
 *
 * One row (sample) at a time: the row maximum mx (its first index is the prediction), then
 * e_c = exp(s_c - mx) in the storage type (EXP: expf or exp), kept in ds, and their sum in
 * double (exp of a value <= 0 cannot overflow, and the sum is >= 1, so its log is safe),
 * then the loss log(sum) - (s_y - mx) and the gradient scale * (e_c / sum - [c == y]) over
 * ds, in double. A row whose sum is NaN (a NaN logit, or a +inf one: inf - inf) has no
 * prediction, and counts as a miss whatever its first index. exp and log are the C library's
 * scalar functions in every variant, so all variants give the same bits. The rows are short (the classes): the loops stay scalar.
 */
#if !defined(T) || !defined(SUF) || !defined(EXP)
#error "define T, SUF and EXP before including loss_impl.h"
#endif

static void TWIN(rs_softmax_cross_entropy)(size_t n, size_t k, const T *restrict s,
                                           const long long *restrict y, double scale,
                                           T *restrict loss, T *restrict hit,
                                           T *restrict ds)
{
    for (size_t i = 0; i < n; ++i) {
        const T *restrict row = s + i * k;
        T *restrict grad = ds + i * k;
        const size_t label = (size_t)y[i];
        size_t best = 0;
        for (size_t c = 1; c < k; ++c)
            if (row[c] > row[best])
                best = c;
        const T mx = row[best];
        double sum = 0.0;
        for (size_t c = 0; c < k; ++c) {
            const T e = EXP(row[c] - mx);
            grad[c] = e;
            sum += (double)e;
        }
        const double inv = 1.0 / sum;
        for (size_t c = 0; c < k; ++c) {
            const double p = (double)grad[c] * inv;
            grad[c] = (T)(scale * (c == label ? p - 1.0 : p));
        }
        loss[i] = (T)(log(sum) - (double)(row[label] - mx));
        hit[i] = best == label && !isnan(sum) ? (T)1 : (T)0; /* a row with a NaN has no maximum: a miss */
    }
}
