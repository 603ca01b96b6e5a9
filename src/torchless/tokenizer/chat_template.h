#pragma once
// Chat templates: turns a conversation into the prompt text a model was trained on, by
// interpreting the model's own Jinja template (GGUF tokenizer.chat_template, Hugging Face
// tokenizer_config.json) rather than matching known patterns. Models without a template get a
// built-in one chosen from their vocabulary (ChatML, Llama 3, Llama 2 / Mistral [INST]).
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "torchless/tokenizer/jinja/jinja_ast.h"

namespace torchless {

class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// The well-known prompt formats, for display and for choosing a fallback template.
enum class ChatFormat { ChatML, Llama3, Llama2, Mistral, Plain, Custom };
std::string_view chat_format_name(ChatFormat format);
// Recognises a template's format from its markers ("<|im_start|>", "<|start_header_id|>", ...).
ChatFormat detect_chat_format(std::string_view template_source);

class ChatTemplate {
 public:
  // Parses the template; throws Error naming the line of a syntax error.
  explicit ChatTemplate(std::string source);
  // The tokenizer's template when it has one, else a built-in one suited to its vocabulary.
  // A template the interpreter cannot parse (a construct outside the supported Jinja subset)
  // falls back to the built-in rendering of the format it names, with fallback_reason() set.
  static ChatTemplate for_tokenizer(const Tokenizer& tokenizer);
  static ChatTemplate builtin(ChatFormat format);

  // Renders the conversation. bos/eos are the texts of the special tokens (templates insert
  // them literally; encode the result with parse_special and without adding another BOS).
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                    std::string_view bos_token, std::string_view eos_token) const;

  const std::string& source() const { return source_; }
  ChatFormat format() const { return format_; }
  // Why the model's own template was replaced by a built-in one; empty when it was not.
  const std::string& fallback_reason() const { return fallback_reason_; }

 private:
  static ChatTemplate for_vocabulary(const Tokenizer& tokenizer);

  std::string source_;
  std::string fallback_reason_;
  ChatFormat format_;
  std::shared_ptr<const jinja::Body> body_;
};

}  // namespace torchless
