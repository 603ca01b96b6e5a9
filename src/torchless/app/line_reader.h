#pragma once
// The chat's input: on a terminal, a line editor (libedit: history, arrow keys, Ctrl-A/E and
// the rest of its emacs bindings); otherwise plain lines from stdin, so pipes and scripts see
// exactly the bytes they send. A line ending in '\' continues on the next in both cases.
#include <atomic>
#include <string>
#include <string_view>

struct editline;
struct history;

namespace torchless::app {

enum class ReadResult { Line, EndOfInput, Interrupted };

class LineReader {
 public:
  // `interrupts` counts SIGINTs (the caller's handler, installed without SA_RESTART while
  // reading so that a Ctrl-C ends the blocking read).
  LineReader(const char* program, const std::atomic<int>& interrupts);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  bool interactive() const { return interactive_; }  // stdin is a terminal
  bool editing() const { return editor_ != nullptr; }

  // One logical line without its newline; `prompt` is shown first when interactive.
  ReadResult read(std::string& line, std::string_view prompt);

  // What the prompt callback shows (public for that C callback only).
  const char* current_prompt() const { return prompt_.c_str(); }

 private:
  ReadResult read_plain(std::string& line, std::string_view prompt);
  ReadResult read_edited(std::string& line, std::string_view prompt);
  void remember(const std::string& line);

  const std::atomic<int>& interrupts_;
  bool interactive_ = false;
  struct editline* editor_ = nullptr;
  struct history* history_ = nullptr;  // elaborated: libedit also has a function history()
  std::string prompt_;
  std::string history_path_;  // empty: history is not kept across runs
};

}  // namespace torchless::app
