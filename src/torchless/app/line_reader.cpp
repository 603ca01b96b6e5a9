#include "torchless/app/line_reader.h"

#include <histedit.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "torchless/app/output.h"

namespace torchless::app {
namespace {

constexpr int kHistorySize = 1000;
constexpr std::string_view kContinuationPrompt = ". ";

char* prompt_of(EditLine* editor) {
  void* reader = nullptr;
  el_get(editor, EL_CLIENTDATA, &reader);
  return const_cast<char*>(static_cast<const LineReader*>(reader)->current_prompt());
}

// $XDG_STATE_HOME/torchless/chat_history, else ~/.local/state/torchless/chat_history; empty
// when neither is set or the folder cannot be made (the history then lives only in memory).
std::string history_file() {
  std::filesystem::path dir;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
    dir = state;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::filesystem::path(home) / ".local" / "state";
  } else {
    return {};
  }
  dir /= "torchless";
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return {};
  return (dir / "chat_history").string();
}

// Appends one physical line to `line`; true when it ends in '\' (the line goes on).
bool append_part(std::string& line, std::string_view part) {
  if (!part.empty() && part.back() == '\n') part.remove_suffix(1);
  if (!part.empty() && part.back() == '\r') part.remove_suffix(1);
  const bool continues = !part.empty() && part.back() == '\\';
  if (continues) part.remove_suffix(1);
  line += part;
  if (continues) line += '\n';
  return continues;
}

}  // namespace

LineReader::LineReader(const char* program, const std::atomic<int>& interrupts)
    : interrupts_(interrupts), interactive_(isatty(STDIN_FILENO) != 0) {
  // Edit only when the screen is the terminal too: `chat > log` reads plain lines.
  if (!interactive_ || isatty(STDOUT_FILENO) == 0) return;
  editor_ = el_init(program, stdin, stdout, stderr);
  history_ = history_init();
  if (editor_ == nullptr || history_ == nullptr) {
    if (editor_ != nullptr) el_end(editor_);
    if (history_ != nullptr) history_end(history_);
    editor_ = nullptr;
    history_ = nullptr;
    return;
  }
  HistEvent event;
  history(history_, &event, H_SETSIZE, kHistorySize);
  history(history_, &event, H_SETUNIQUE, 1);
  history_path_ = history_file();
  if (!history_path_.empty()) history(history_, &event, H_LOAD, history_path_.c_str());
  el_set(editor_, EL_CLIENTDATA, this);
  el_set(editor_, EL_PROMPT, prompt_of);
  el_set(editor_, EL_EDITOR, "emacs");
  el_set(editor_, EL_HIST, history, history_);
  el_source(editor_, nullptr);  // the user's ~/.editrc, as every libedit program reads it
}

LineReader::~LineReader() {
  if (editor_ != nullptr) el_end(editor_);
  if (history_ != nullptr) history_end(history_);
}

ReadResult LineReader::read(std::string& line, std::string_view prompt) {
  line.clear();
  return editor_ != nullptr ? read_edited(line, prompt) : read_plain(line, prompt);
}

ReadResult LineReader::read_plain(std::string& line, std::string_view prompt) {
  if (interactive_) write_stdout(prompt);
  char* buffer = nullptr;
  size_t capacity = 0;
  while (true) {
    errno = 0;
    // A Ctrl-C that came just before the read would not interrupt it.
    const ssize_t n = interrupts_.load() > 0 ? -1 : getline(&buffer, &capacity, stdin);
    if (n < 0) {
      const bool interrupted = errno == EINTR || interrupts_.load() > 0;
      std::clearerr(stdin);
      std::free(buffer);
      if (interrupted) return ReadResult::Interrupted;
      return line.empty() ? ReadResult::EndOfInput : ReadResult::Line;
    }
    if (!append_part(line, std::string_view(buffer, static_cast<size_t>(n)))) {
      std::free(buffer);
      return ReadResult::Line;
    }
    if (interactive_) write_stdout(kContinuationPrompt);
  }
}

ReadResult LineReader::read_edited(std::string& line, std::string_view prompt) {
  prompt_ = prompt;
  while (true) {
    if (interrupts_.load() > 0) return ReadResult::Interrupted;
    errno = 0;
    int count = 0;
    // el_gets returns null at end of input, and on a signal (errno EINTR: the read it waits in
    // is not restarted), after putting the terminal back as it found it.
    const char* part = el_gets(editor_, &count);
    if (part == nullptr || count <= 0) {
      if (errno == EINTR || interrupts_.load() > 0) return ReadResult::Interrupted;
      if (line.empty()) return ReadResult::EndOfInput;
      remember(line);
      return ReadResult::Line;
    }
    if (!append_part(line, std::string_view(part, static_cast<size_t>(count)))) {
      remember(line);
      return ReadResult::Line;
    }
    prompt_ = kContinuationPrompt;
  }
}

// Saved after every line, so a chat ended by Ctrl-C or a crash keeps what was typed.
void LineReader::remember(const std::string& line) {
  if (line.empty()) return;
  HistEvent event;
  history(history_, &event, H_ENTER, line.c_str());
  if (!history_path_.empty()) history(history_, &event, H_SAVE, history_path_.c_str());
}

}  // namespace torchless::app
