// What one evaluation of the canary concluded: the judge's verdict and the rollout's
// judgement share this one set of kinds.
#pragma once

namespace veer::gating {

enum class verdict_kind { ok, holding, violation };

}  // namespace veer::gating
