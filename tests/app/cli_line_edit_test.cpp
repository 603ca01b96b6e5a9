// The chat on a terminal (issue 11, item 12): a line editor with history, arrow keys and
// Ctrl-A/E. The chat runs under a pseudo-terminal and the test types keys as a user would;
// each reply is compared with the reply the same line gets through a pipe, so the test knows
// exactly which line the model was asked (greedy sampling makes a reply a function of it).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/cli_runner.h"
#include "common/temp_dir.h"

namespace torchless::test {
namespace {

std::string stories() {
  return shared_path("models/stories260K.gguf");
}

std::vector<std::string> chat_args() {
  return {"chat", "-m", stories(), "-n", "8", "--temp", "0"};
}

// The reply to one line sent through a pipe, without its newline.
std::string piped_reply(const std::string& line) {
  const CliResult r = run_cli(chat_args(), line + "\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string reply = r.out;
  if (!reply.empty() && reply.back() == '\n') reply.pop_back();
  EXPECT_FALSE(reply.empty()) << "no reply to " << line;
  return reply;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// `torchless chat` with stdin and stdout on a pseudo-terminal and stderr in a file. HOME and
// XDG_STATE_HOME point at `state` so the history file is the test's own and no ~/.editrc of
// the user changes the key bindings.
class PtyChat {
 public:
  explicit PtyChat(const TempDir& state) : err_path_((state / "err").string()) {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) return;
    const char* slave_name = ptsname(master_);
    if (slave_name == nullptr) return;
    const std::string slave(slave_name);
    slave_ = open(slave.c_str(), O_RDWR | O_NOCTTY);
    if (slave_ < 0) return;
    winsize size = {};
    size.ws_row = 24;
    size.ws_col = 200;
    ioctl(master_, TIOCSWINSZ, &size);
    std::vector<std::string> args = chat_args();
    args.insert(args.begin(), TORCHLESS_CLI);
    pid_ = fork();
    if (pid_ == 0) {
      setsid();  // the terminal becomes the chat's controlling one: Ctrl-C sends SIGINT
      const int tty = open(slave.c_str(), O_RDWR);
      const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (tty < 0 || err < 0) _exit(126);
      dup2(tty, 0);
      dup2(tty, 1);
      dup2(err, 2);
      close(master_);
      close(slave_);
      setenv("HOME", state.path().c_str(), 1);
      setenv("XDG_STATE_HOME", (state / "state").c_str(), 1);
      setenv("TERM", "xterm", 1);
      unsetenv("EDITRC");
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(TORCHLESS_CLI, argv.data());
      _exit(127);
    }
    fcntl(master_, F_SETFL, O_NONBLOCK);
  }
  ~PtyChat() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
    if (slave_ >= 0) close(slave_);
  }
  bool started() const { return pid_ > 0; }

  void type(const std::string& keys) {
    ASSERT_EQ(write(master_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }
  // What the terminal showed, line ends as "\n".
  std::string screen() const {
    std::string s;
    for (size_t i = 0; i < screen_.size(); ++i) {
      if (!(screen_[i] == '\r' && i + 1 < screen_.size() && screen_[i + 1] == '\n')) {
        s += screen_[i];
      }
    }
    return s;
  }
  std::string err() const {
    std::ifstream in(err_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Drains the terminal until `done` holds; false if it still does not after a minute (a hang
  // guard, not a timing assertion).
  template <typename Done>
  bool pump_until(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
      char buffer[4096];
      const ssize_t n = read(master_, buffer, sizeof buffer);
      if (n > 0) screen_.append(buffer, static_cast<size_t>(n));
      if (n <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (std::chrono::steady_clock::now() > give_up) return false;
    }
    return true;
  }
  // Waits until `done` holds and the line editor reads keys: libedit prints its prompt before
  // it puts the terminal in raw mode, and keys typed before that would meet the kernel's line
  // discipline instead (echoed twice, Ctrl-D taken as end of file).
  template <typename Done>
  bool wait_ready(Done done) {
    return pump_until([&] {
      termios mode = {};
      return done() && tcgetattr(slave_, &mode) == 0 && (mode.c_lflag & ICANON) == 0;
    });
  }
  // Types `keys` (a line and Enter) and waits for `reply` and the prompt after it.
  bool ask(const std::string& keys, const std::string& reply) {
    const size_t from = screen().size();
    type(keys);
    return wait_ready([&] { return screen().find(reply, from) != std::string::npos; });
  }
  bool reset() {
    const size_t resets = count_of(err(), "[conversation reset]");
    type("/reset\r");
    return wait_ready([&] { return count_of(err(), "[conversation reset]") > resets; });
  }
  int wait_exit() {
    int status = 0;
    if (!pump_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; })) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string err_path_;
  int master_ = -1;
  int slave_ = -1;  // kept open to read the terminal's mode
  pid_t pid_ = -1;
  std::string screen_;
};

constexpr char kUp[] = "\x1b[A";
constexpr char kCtrlA[] = "\x01";
constexpr char kCtrlC[] = "\x03";
constexpr char kCtrlD[] = "\x04";
constexpr char kCtrlE[] = "\x05";

TEST(CliLineEdit, UpArrowRecallsALineAndCtrlAEEditIt) {
  const std::string once = piped_reply("Once upon a time");
  const std::string hello = piped_reply("Hello!");
  ASSERT_NE(once, hello);
  TempDir state;
  PtyChat chat(state);
  if (!chat.started()) GTEST_SKIP() << "no pseudo-terminal could be opened";
  ASSERT_TRUE(chat.wait_ready([] { return true; })) << chat.err();
  ASSERT_TRUE(chat.ask("Once upon a time\r", once)) << chat.screen() << chat.err();
  ASSERT_TRUE(chat.reset()) << chat.screen() << chat.err();
  // History: "Once upon a time", "/reset"; two ups recall the first, asked again after the
  // reset, so the same reply comes back.
  ASSERT_TRUE(chat.ask(std::string(kUp) + kUp + "\r", once)) << chat.screen() << chat.err();
  ASSERT_TRUE(chat.reset()) << chat.screen() << chat.err();
  ASSERT_TRUE(chat.ask(std::string("ello") + kCtrlA + "H" + kCtrlE + "!\r", hello))
      << chat.screen() << chat.err();
  // Ctrl-C at the prompt asks for a second one, which quits.
  chat.type(kCtrlC);
  ASSERT_TRUE(chat.wait_ready([&] { return chat.err().find("Ctrl-C again") != std::string::npos; }))
      << chat.err();
  chat.type(kCtrlC);
  EXPECT_EQ(chat.wait_exit(), 0) << chat.err();
}

TEST(CliLineEdit, HistoryIsKeptAcrossChats) {
  const std::string hello = piped_reply("Hello!");
  TempDir state;
  {
    PtyChat chat(state);
    if (!chat.started()) GTEST_SKIP() << "no pseudo-terminal could be opened";
    ASSERT_TRUE(chat.wait_ready([] { return true; })) << chat.err();
    ASSERT_TRUE(chat.ask("Hello!\r", hello)) << chat.screen() << chat.err();
    chat.type(kCtrlD);
    ASSERT_EQ(chat.wait_exit(), 0) << chat.err();
  }
  std::ifstream file(state / "state" / "torchless" / "chat_history");
  std::stringstream saved;
  saved << file.rdbuf();
  EXPECT_NE(saved.str().find("Hello!"), std::string::npos) << saved.str();
  PtyChat chat(state);
  ASSERT_TRUE(chat.wait_ready([] { return true; })) << chat.err();
  ASSERT_TRUE(chat.ask(std::string(kUp) + "\r", hello)) << chat.screen() << chat.err();
  chat.type(kCtrlD);
  EXPECT_EQ(chat.wait_exit(), 0) << chat.err();
}

}  // namespace
}  // namespace torchless::test
