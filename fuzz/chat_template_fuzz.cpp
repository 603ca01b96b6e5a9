// libFuzzer target for the chat-template engine (the Jinja subset's lexer, parser and
// interpreter): the input is a template, rendered over a small fixed conversation. Any template
// must render or throw torchless::Error; a crash, a sanitizer report, a stack overflow from deep
// nesting or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "torchless/core/error.h"
#include "torchless/tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const torchless::ChatMessage kConversation[] = {
      {"system", "Be brief."},
      {"user", "Hi <b>\xC3\xA9</b>\n{{ not a template }}"},
      {"assistant", "Hello!"},
      {"user", ""},
  };
  try {
    const torchless::ChatTemplate tmpl(std::string(reinterpret_cast<const char*>(data), size));
    (void)tmpl.apply(kConversation, true, "<s>", "</s>");
  } catch (const torchless::Error&) {
  }
  return 0;
}
