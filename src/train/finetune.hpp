// Loading the init model of a fine-tuning run (train.hpp), private to src/train.
#pragma once

#include <filesystem>
#include <string>

#include "train/train_net.hpp"
#include "wsi/train.hpp"

namespace wsi {
class PatchSet;
}

namespace wsi::detail {

struct InitModel {
  InitSummary summary;
  TrainNet net;
};

// Loads options.init for training: first as a Model (so a file or sidecar that breaks the
// contract gets the errors `heatmap --model` gives), then its weights as a TrainNet, on the CPU.
// Checks the options against it (see inspect_init) and, when given, the patch size of `data`.
InitModel load_init(const TrainOptions& options, const PatchSet* data);

}  // namespace wsi::detail
