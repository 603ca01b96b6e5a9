#include "torchless/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <vector>

#include "torchless/core/error.h"
#include "torchless/tokenizer/tokenizer.h"
#include "torchless/tokenizer/vocab.h"

namespace torchless {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "You are terse."}, {"user", "Hi there "}, {"assistant", "Hello."}, {"user", "Bye"}};

std::string render(std::string_view source,
                   const std::vector<ChatMessage>& messages = kConversation,
                   bool add_generation_prompt = true) {
  return ChatTemplate(std::string(source)).apply(messages, add_generation_prompt, "<s>", "</s>");
}

TEST(ChatTemplate, BuiltinChatMLMatchesTheFormat) {
  const std::string out =
      ChatTemplate::builtin(ChatFormat::ChatML).apply(kConversation, true, "", "");
  EXPECT_EQ(out,
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there <|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, BuiltinLlama3TrimsContentAndAddsHeader) {
  const std::vector<ChatMessage> one = {{"user", " Hi "}};
  EXPECT_EQ(ChatTemplate::builtin(ChatFormat::Llama3).apply(one, true, "<|begin_of_text|>", ""),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, BuiltinLlama2FoldsSystemIntoFirstUserTurn) {
  EXPECT_EQ(ChatTemplate::builtin(ChatFormat::Llama2).apply(kConversation, true, "<s>", "</s>"),
            "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello. </s>"
            "<s>[INST] Bye [/INST]");
}

TEST(ChatTemplate, BuiltinMistralWrapsUserTurnsInInst) {
  const std::vector<ChatMessage> turns = {
      {"user", " Hi "}, {"assistant", "Hello."}, {"user", "Bye"}};
  EXPECT_EQ(ChatTemplate::builtin(ChatFormat::Mistral).apply(turns, true, "<s>", "</s>"),
            "<s>[INST] Hi [/INST]Hello.</s>[INST] Bye [/INST]");
}

// Templates written the way the Qwen2 (ChatML with a default system turn) and Llama 3 model
// cards ship them render exactly what the built-in formats render.
TEST(ChatTemplate, ModelCardStyleTemplatesMatchTheBuiltinFormats) {
  const char* chatml =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  EXPECT_EQ(render(chatml),
            ChatTemplate::builtin(ChatFormat::ChatML).apply(kConversation, true, "", ""));
  const std::vector<ChatMessage> no_system(kConversation.begin() + 1, kConversation.end());
  EXPECT_EQ(render(chatml, no_system).substr(0, 58),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
  const char* llama3 =
      "{% set loop_messages = messages %}{% for message in loop_messages %}"
      "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
      " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
      "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
      "{% endif %}";
  EXPECT_EQ(ChatTemplate(llama3).apply(kConversation, true, "<|begin_of_text|>", ""),
            ChatTemplate::builtin(ChatFormat::Llama3)
                .apply(kConversation, true, "<|begin_of_text|>", ""));
}

// A vocabulary with the given chat template, for ChatTemplate::for_tokenizer.
std::unique_ptr<Tokenizer> tokenizer_with_template(std::optional<std::string> chat_template) {
  Vocab vocab;
  vocab.model_type = "llama";
  vocab.source = "test vocabulary";
  for (const char* text : {"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"}) {
    vocab.tokens.push_back({text, 0.0f, TokenType::Control});
  }
  vocab.tokens.push_back({"\u2581a", -1.0f, TokenType::Normal});
  vocab.unk = 0;
  vocab.bos = 1;
  vocab.eos = 2;
  vocab.chat_template = std::move(chat_template);
  return make_tokenizer(std::move(vocab));
}

TEST(ChatTemplate, AnUnparsableModelTemplateFallsBackToTheFormatItNames) {
  const auto tok = tokenizer_with_template(
      "{% macro turn(m) %}<|im_start|>{{ m.role }}{% endmacro %}"
      "{% for m in messages %}{{ turn(m) }}{% endfor %}");
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(*tok);
  EXPECT_EQ(tmpl.format(), ChatFormat::ChatML);
  EXPECT_NE(tmpl.fallback_reason().find("chatml"), std::string::npos) << tmpl.fallback_reason();
  EXPECT_NE(tmpl.fallback_reason().find("not usable"), std::string::npos) << tmpl.fallback_reason();
  const ChatTemplate own = ChatTemplate::for_tokenizer(*tokenizer_with_template("{{ 'x' }}"));
  EXPECT_TRUE(own.fallback_reason().empty());
  EXPECT_EQ(own.format(), ChatFormat::Custom);
  // No template at all: chosen from the vocabulary's special tokens, silently.
  const ChatTemplate by_vocab = ChatTemplate::for_tokenizer(*tokenizer_with_template(std::nullopt));
  EXPECT_EQ(by_vocab.format(), ChatFormat::ChatML);
  EXPECT_TRUE(by_vocab.fallback_reason().empty());
}

// A template in the style Hugging Face models ship: a system default, alternation check with
// raise_exception, loop.first, slicing and whitespace control with trim_blocks/lstrip_blocks.
TEST(ChatTemplate, InterpretsHuggingFaceStyleTemplate) {
  const char* source = R"({%- if messages[0]['role'] == 'system' -%}
    {%- set system = messages[0]['content'] -%}
    {%- set rest = messages[1:] -%}
{%- else -%}
    {%- set system = 'default' -%}
    {%- set rest = messages -%}
{%- endif -%}
{%- for m in rest -%}
    {%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('roles must alternate') -}}
    {%- endif -%}
    {%- if loop.first %}[{{ system }}]{% endif -%}
    {{ m.role | upper }}: {{ m['content'].strip() }}
{% endfor -%}
{%- if add_generation_prompt %}ASSISTANT:{% endif -%})";
  EXPECT_EQ(render(source),
            "[You are terse.]USER: Hi there\nASSISTANT: Hello.\nUSER: Bye\nASSISTANT:");
  const std::vector<ChatMessage> bad = {{"user", "a"}, {"user", "b"}};
  try {
    render(source, bad);
    FAIL() << "expected raise_exception to throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("roles must alternate"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, TrimBlocksAndLstripBlocksLikeHuggingFace) {
  const char* source =
      "{% for m in messages %}\n  {% if m.role == 'user' %}\nU{{ loop.index }}\n  {% endif %}\n{% "
      "endfor %}";
  EXPECT_EQ(render(source), "U2\nU4\n");
}

TEST(ChatTemplate, NamespaceSurvivesLoopScope) {
  const char* source =
      "{% set ns = namespace(last_user=-1, n=0) %}{% set outer = 'kept' %}"
      "{% for m in messages %}{% set outer = 'loop-local' %}{% if m.role == 'user' %}"
      "{% set ns.last_user = loop.index0 %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}"
      "{{ ns.last_user }} {{ ns.n }} {{ outer }}";
  EXPECT_EQ(render(source), "3 2 kept");
}

TEST(ChatTemplate, ExpressionsFiltersAndTests) {
  const char* source =
      "{{ messages | length }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length "
      "}}|"
      "{{ (messages | last).content }}|{{ 'a,b,,c'.split(',') | join('-') }}|{{ 7 // 2 }} {{ 7 % 3 "
      "}} "
      "{{ 2 * 3 + 1 }}|{{ tools is defined }} {{ tools is not defined }}|{{ none is none }}|"
      "{{ 'x' if false else 'y' }}|{{ [1, 2, 3][::-1] }}|{{ {'k': 'v'} | tojson }}|"
      "{{ 'abc'[1:] ~ 1 }}|{{ 'Hi' in 'Hi there' }}|{% for k, v in {'a': 1}.items() %}{{ k }}={{ v "
      "}}{% endfor %}";
  EXPECT_EQ(render(source),
            "4|2|Bye|a-b--c|3 1 7|False True|True|y|[3, 2, 1]|{\"k\":\"v\"}|bc1|True|a=1");
}

TEST(ChatTemplate, LoopControlAndElse) {
  const char* source =
      "{% for m in messages %}{% if loop.index0 == 2 %}{% break %}{% endif %}{{ m.role[0] }}{% "
      "endfor %}"
      "{% for x in [] %}no{% else %}empty{% endfor %}"
      "{% for m in messages if m.role == 'user' %}{{ loop.index }}{% endfor %}";
  EXPECT_EQ(render(source), "suempty12");
}

TEST(ChatTemplate, SyntaxErrorsNameTheLine) {
  try {
    ChatTemplate("line one\n{% if x %}\n{{ y + }}\n{% endif %}");
    FAIL() << "expected a syntax error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChatTemplate("{% for x in y %}never closed"), Error);
  EXPECT_THROW(ChatTemplate("{% macro m() %}{% endmacro %}"), Error);
  EXPECT_THROW(ChatTemplate("{{ 'unterminated }}"), Error);
}

TEST(ChatTemplate, DetectsKnownFormats) {
  EXPECT_EQ(detect_chat_format("{{'<|im_start|>' + role}}"), ChatFormat::ChatML);
  EXPECT_EQ(detect_chat_format("<|start_header_id|>"), ChatFormat::Llama3);
  EXPECT_EQ(detect_chat_format("[INST] <<SYS>>"), ChatFormat::Llama2);
  EXPECT_EQ(detect_chat_format("[INST]"), ChatFormat::Mistral);
  EXPECT_EQ(detect_chat_format("{{ x }}"), ChatFormat::Custom);
}

// Found by chat_template_fuzz: deep nesting overflowed the stack of the recursive parser,
// interpreter and AST destructor; it now fails past a fixed depth.
TEST(ChatTemplate, DeepNestingIsRefused) {
  const auto repeat = [](std::string_view s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  const int n = 20000;
  for (const std::string& source :
       {"{{ " + repeat("(", n) + "1" + repeat(")", n) + " }}", repeat("{% if true %}", n),
        "{{ 1" + repeat(" + 1", n) + " }}", "{{ " + repeat("not ", n) + "1 }}",
        "{{ " + repeat("-", n) + "1 }}", "{{ " + repeat("[", n) + repeat("]", n) + " }}",
        "{{ x" + repeat(".y", n) + " }}", "{{ 1" + repeat(" if 1 else 1", n) + " }}"}) {
    try {
      ChatTemplate{source};
      FAIL() << "expected an error for " << source.substr(0, 40);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("deeper than"), std::string::npos) << e.what();
    }
  }
  // Nesting that real templates use still parses.
  EXPECT_EQ(render("{{ " + repeat("(", 50) + "1" + repeat(")", 50) + " }}" +
                   repeat("{% if true %}", 50) + "x" + repeat("{% endif %}", 50)),
            "1x");
}

// Found by chat_template_fuzz: these threw exceptions other than Error (std::out_of_range,
// nlohmann::json::type_error), overflowed integers or dereferenced a null subscript.
TEST(ChatTemplate, HostileExpressionsRaiseError) {
  for (const char* source :
       {"{{ 99999999999999999999999 }}", "{{ x[] }}", "{{ 'a' + 1 }}", "{{ 'a' - 1 }}",
        "{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}",
        "{{ 4611686018427387904 * 4 }}", "{{ (-9223372036854775807 - 1) // -1 }}",
        "{{ (-9223372036854775807 - 1) | abs }}", "{{ -(-9223372036854775807 - 1) }}",
        "{{ 1e300 | int }}", "{{ '99999999999999999999' | int }}", "{{ 4 is divisibleby 0 }}",
        "{{ 'ab' * 4000000000 }}", "{{ range(100000000) | length }}",
        "{% set s = namespace(v='ab') %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}{% endfor "
        "%}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{{ range('a') }}", "{{ 'abc'[1:'x'] }}"}) {
    EXPECT_THROW(render(source), Error) << source;
  }
  EXPECT_EQ(render("{{ 'abc' | int }} {{ (-9223372036854775807 - 1) % (0 - 1) }} {{ -7 // 2 }} "
                   "{{ -7 % 3 }} {{ 7 % (0 - 3) }} {{ 'abcdef'[::9223372036854775807] }} "
                   "{{ 6 is divisibleby(0 - 3) }}"),
            "0 0 -4 2 -2 a True");
}

}  // namespace
}  // namespace torchless
