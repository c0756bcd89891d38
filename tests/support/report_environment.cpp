// Prints the worst finite-difference gradient error of the whole run when the tests end,
// so one figure summarises every gradient check (kernels and models).
#include <cstdio>

#include <gtest/gtest.h>

#include "support/gradcheck.h"

namespace {

class GradcheckReport : public testing::Environment {
 public:
  void TearDown() override {
    if (pgolf::test::worst_gradcheck_error() > 0)
      std::printf("gradient checks: worst relative error %.3g (bound 1e-6)\n",
                  pgolf::test::worst_gradcheck_error());
  }
};

const auto* const registered = testing::AddGlobalTestEnvironment(new GradcheckReport);

}  // namespace
