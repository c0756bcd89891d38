#include "eval/scoring_on_gpu.h"

#include "core/error.h"
#ifdef PGOLF_HAVE_CUDA
#include "eval/cuda/device_scoring.h"
#endif

namespace pgolf {

EvalResult evaluate_on_gpu(const Model<float>& model, const std::vector<int32_t>& tokens,
                           int64_t seq_len, int64_t stride, int64_t batch_seqs,
                           const ByteLuts& luts, bool reference_tail) {
#ifdef PGOLF_HAVE_CUDA
  cuda::Context ctx;
  cuda::DeviceModel gpu(ctx, model.plan());
  gpu.set_active_repeats(model.active_repeats());
  gpu.upload(model.params());
  return stride > 0 ? cuda::evaluate_sliding(gpu, tokens, seq_len, stride, batch_seqs, luts,
                                             reference_tail)
                    : cuda::evaluate_standard(gpu, tokens, seq_len, batch_seqs, luts);
#else
  (void)model, (void)tokens, (void)seq_len, (void)stride, (void)batch_seqs, (void)luts,
      (void)reference_tail;
  fail("internal: a GPU evaluation asked of a pgolf built without CUDA");
#endif
}

}  // namespace pgolf
