// Long outputs and interruptions (issue 11, items 3 and 4): generate and chat shift the
// context instead of stopping or dying when it fills, and Ctrl-C stops a chat reply without
// ending the chat.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/cli_runner.h"
#include "common/temp_dir.h"

namespace torchless::test {
namespace {

using nlohmann::json;

std::string stories() {
  return shared_path("models/stories260K.gguf");
}

TEST(CliContext, GenerateShiftsTheContextByDefault) {
  // 200 tokens through a 32-token context; the stories model writes about 100 before its
  // end of text, so --ignore-eos keeps it going.
  const std::vector<std::string> args = {
      "generate", "-m", stories(), "-p", "Once upon a time", "-n",    "200",
      "--ctx",    "32", "--temp",  "0",  "--ignore-eos",     "--json"};
  CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["tokens"].size(), 200u);
  EXPECT_EQ(out["stop"], "max_tokens");
  // Until the context first fills, the output is exactly the unshifted one.
  std::vector<std::string> off = args;
  off.push_back("--no-context-shift");
  r = run_cli(off);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json stopped = json::parse(r.out);
  EXPECT_EQ(stopped["stop"], "context_full");
  const size_t n = stopped["tokens"].size();
  ASSERT_GT(n, 0u);
  EXPECT_EQ(json(std::vector<json>(out["tokens"].begin(), out["tokens"].begin() + n)),
            stopped["tokens"]);
}

TEST(CliContext, ChatKeepsGoingWhenTheContextFills) {
  const CliResult r = run_cli(
      {"chat", "-m", stories(), "--ctx", "48", "-n", "30", "--temp", "0", "-sys", "Tell a story"},
      "Once upon a time there was a dog\nThe dog went to the park\n"
      "She was happy\nThe end of the story was near\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 4) << r.out;
  EXPECT_NE(r.err.find("dropped the oldest turn"), std::string::npos) << r.err;
  // A message longer than the whole context is refused, and the chat goes on.
  std::string long_line;
  for (int i = 0; i < 40; ++i) long_line += "the dog and the cat ";
  const CliResult big = run_cli({"chat", "-m", stories(), "--ctx", "32", "-n", "4", "--temp", "0"},
                                long_line + "\nHello\n");
  ASSERT_EQ(big.exit_code, 0) << big.err;
  EXPECT_NE(big.err.find("does not fit the context"), std::string::npos) << big.err;
  EXPECT_EQ(std::count(big.out.begin(), big.out.end(), '\n'), 1) << big.out;
}

// The chat as a child process with a stdin pipe, a drained stdout pipe and stderr in a file,
// so the test can send Ctrl-C (SIGINT) at chosen moments.
class ChatProcess {
 public:
  explicit ChatProcess(const std::vector<std::string>& args) : err_path_(dir_ / "err") {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(err, 2);
      close(in[1]);
      close(out[0]);
      std::vector<char*> argv = {const_cast<char*>(TORCHLESS_CLI)};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(TORCHLESS_CLI, argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    fcntl(stdout_, F_SETFL, O_NONBLOCK);
  }
  ~ChatProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdin_ >= 0) close(stdin_);
    close(stdout_);
  }

  void send(const std::string& line) {
    ASSERT_EQ(write(stdin_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  void close_stdin() {
    close(stdin_);
    stdin_ = -1;
  }
  void interrupt() { kill(pid_, SIGINT); }
  std::string err() const {
    std::ifstream in(err_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  size_t out_size() const { return out_.size(); }

  // Drains stdout until `done` holds; false if the process is still not there after a minute
  // (a hang guard, not a timing assertion).
  template <typename Done>
  bool pump_until(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
      char buffer[4096];
      const ssize_t n = read(stdout_, buffer, sizeof buffer);
      if (n > 0) out_.append(buffer, static_cast<size_t>(n));
      if (n <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (std::chrono::steady_clock::now() > give_up) return false;
    }
    return true;
  }
  size_t count_in_err(const std::string& what) const {
    const std::string e = err();
    size_t n = 0;
    for (size_t at = e.find(what); at != std::string::npos; at = e.find(what, at + 1)) ++n;
    return n;
  }
  int wait_exit() {
    int status = 0;
    pump_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; });
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  TempDir dir_;
  std::string err_path_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string out_;
};

TEST(CliContext, CtrlCStopsTheReplyAndTwiceAtThePromptQuits) {
  // Endless replies: no end-of-turn, and context shifts in a 64-token context.
  ChatProcess chat(
      {"chat", "-m", stories(), "--ctx", "64", "-n", "-1", "--ignore-eos", "--temp", "0"});
  for (const std::string line : {"Once upon a time\n", "The dog\n"}) {
    chat.send(line);
    const size_t before = chat.out_size();
    const size_t stops = chat.count_in_err("[reply stopped]");
    ASSERT_TRUE(chat.pump_until([&] { return chat.out_size() > before + 400; })) << chat.err();
    chat.interrupt();
    ASSERT_TRUE(chat.pump_until([&] { return chat.count_in_err("[reply stopped]") > stops; }))
        << chat.err();
  }
  chat.interrupt();  // at the empty prompt: asks for a second one
  ASSERT_TRUE(chat.pump_until([&] { return chat.count_in_err("Ctrl-C again") == 1; }))
      << chat.err();
  chat.interrupt();
  EXPECT_EQ(chat.wait_exit(), 0) << chat.err();
}

TEST(CliContext, ChatEndsCleanlyAtEndOfInputAfterAnInterruptedReply) {
  ChatProcess chat(
      {"chat", "-m", stories(), "--ctx", "64", "-n", "-1", "--ignore-eos", "--temp", "0"});
  chat.send("Once upon a time\n");
  ASSERT_TRUE(chat.pump_until([&] { return chat.out_size() > 200; }));
  chat.interrupt();
  ASSERT_TRUE(chat.pump_until([&] { return chat.count_in_err("[reply stopped]") == 1; }));
  chat.close_stdin();
  EXPECT_EQ(chat.wait_exit(), 0) << chat.err();
}

}  // namespace
}  // namespace torchless::test
