#include "torchless/formats/weight_store.h"

#include "torchless/core/error.h"

namespace torchless {

void WeightStore::add(std::string name, const HostTensorView& view) {
  auto [it, inserted] = tensors_.emplace(std::move(name), view);
  if (!inserted) fail("duplicate tensor '{}'", it->first);
}

void WeightStore::add_mapping(std::shared_ptr<const MappedFile> file) {
  if (!file) return;
  if (file->size() > 0) regions_.push_back(file->bytes());
  owners_.push_back(std::move(file));
}

bool WeightStore::contains(std::string_view name) const {
  return tensors_.count(name) != 0;
}

const HostTensorView* WeightStore::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const HostTensorView& WeightStore::get(std::string_view name) const {
  const HostTensorView* view = find(name);
  if (!view) fail("the model has no tensor '{}'", name);
  return *view;
}

}  // namespace torchless
