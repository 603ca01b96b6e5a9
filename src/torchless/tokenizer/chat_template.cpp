#include "torchless/tokenizer/chat_template.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "torchless/core/error.h"
#include "torchless/tokenizer/jinja/jinja_interpreter.h"
#include "torchless/tokenizer/jinja/jinja_parser.h"
#include "torchless/tokenizer/tokenizer.h"

namespace torchless {
namespace {

// Our own renderings of the published formats, used only when a model ships no template.
constexpr std::string_view kChatML =
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
constexpr std::string_view kLlama3 =
    "{{ bos_token }}{% for m in messages %}"
    "{{ '<|start_header_id|>' + m.role + '<|end_header_id|>\n\n' + m.content | trim + '<|eot_id|>' "
    "}}"
    "{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
constexpr std::string_view kLlama2 =
    "{% set ns = namespace(system='') %}{% for m in messages %}"
    "{% if m.role == 'system' %}{% set ns.system = '<<SYS>>\n' + m.content + '\n<</SYS>>\n\n' %}"
    "{% elif m.role == 'user' %}{{ bos_token + '[INST] ' + ns.system + m.content | trim + ' "
    "[/INST]' }}"
    "{% set ns.system = '' %}"
    "{% else %}{{ ' ' + m.content | trim + ' ' + eos_token }}{% endif %}{% endfor %}";
constexpr std::string_view kMistral =
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}"
    "{{ '[INST] ' + m.content | trim + ' [/INST]' }}"
    "{% elif m.role == 'assistant' %}{{ m.content | trim + eos_token }}"
    "{% else %}{{ '[INST] ' + m.content | trim + ' [/INST]' }}{% endif %}{% endfor %}";
constexpr std::string_view kPlain =
    "{{ bos_token }}{% for m in messages %}{{ m.content }}{% if not loop.last %}{{ '\n' }}"
    "{% endif %}{% endfor %}";

}  // namespace

std::string_view chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::ChatML:
      return "chatml";
    case ChatFormat::Llama3:
      return "llama3";
    case ChatFormat::Llama2:
      return "llama2";
    case ChatFormat::Mistral:
      return "mistral";
    case ChatFormat::Plain:
      return "plain";
    case ChatFormat::Custom:
      return "custom";
  }
  return "custom";
}

ChatFormat detect_chat_format(std::string_view src) {
  auto has = [&](std::string_view s) { return src.find(s) != std::string_view::npos; };
  if (has("<|im_start|>")) return ChatFormat::ChatML;
  if (has("<|start_header_id|>")) return ChatFormat::Llama3;
  if (has("<<SYS>>")) return ChatFormat::Llama2;
  if (has("[INST]")) return ChatFormat::Mistral;
  return ChatFormat::Custom;
}

ChatTemplate::ChatTemplate(std::string source)
    : source_(std::move(source)),
      format_(detect_chat_format(source_)),
      body_(std::make_shared<const jinja::Body>(jinja::parse_template(source_))) {}

ChatTemplate ChatTemplate::builtin(ChatFormat format) {
  switch (format) {
    case ChatFormat::ChatML:
      return ChatTemplate(std::string(kChatML));
    case ChatFormat::Llama3:
      return ChatTemplate(std::string(kLlama3));
    case ChatFormat::Llama2:
      return ChatTemplate(std::string(kLlama2));
    case ChatFormat::Mistral:
      return ChatTemplate(std::string(kMistral));
    case ChatFormat::Plain:
    case ChatFormat::Custom: {
      ChatTemplate t{std::string(kPlain)};
      t.format_ = ChatFormat::Plain;
      return t;
    }
  }
  return ChatTemplate(std::string(kPlain));
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tokenizer) {
  const auto source = tokenizer.chat_template();
  if (!source) return for_vocabulary(tokenizer);
  try {
    return ChatTemplate(*source);
  } catch (const Error& e) {
    const ChatFormat named = detect_chat_format(*source);
    ChatTemplate fallback =
        named == ChatFormat::Custom ? for_vocabulary(tokenizer) : builtin(named);
    fallback.fallback_reason_ =
        fmt::format("the model's chat template is not usable ({}); using the built-in {} format",
                    e.what(), chat_format_name(fallback.format()));
    return fallback;
  }
}

ChatTemplate ChatTemplate::for_vocabulary(const Tokenizer& tokenizer) {
  if (tokenizer.token_id("<|im_start|>")) return builtin(ChatFormat::ChatML);
  if (tokenizer.token_id("<|start_header_id|>")) return builtin(ChatFormat::Llama3);
  if (tokenizer.token_id("[INST]")) return builtin(ChatFormat::Mistral);
  return builtin(ChatFormat::Plain);
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                std::string_view bos_token, std::string_view eos_token) const {
  nlohmann::json list = nlohmann::json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  const nlohmann::json context = {{"messages", list},
                                  {"add_generation_prompt", add_generation_prompt},
                                  {"bos_token", std::string(bos_token)},
                                  {"eos_token", std::string(eos_token)}};
  return jinja::render(*body_, context);
}

}  // namespace torchless
