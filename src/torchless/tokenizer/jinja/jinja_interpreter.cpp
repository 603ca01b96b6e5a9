#include "torchless/tokenizer/jinja/jinja_interpreter.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <limits>
#include <map>
#include <stdexcept>

#include "torchless/core/error.h"
#include "torchless/tokenizer/jinja/jinja_values.h"

namespace torchless::jinja {
namespace {

using nlohmann::json;

// Loop control travels as a flag rather than an exception so a template's break/continue
// never unwinds through evaluation code.
enum class Flow { Normal, Break, Continue };

// Bounds on what a hostile template can make the interpreter do (nested loops over range(),
// huge output); far above what a real conversation needs.
constexpr int64_t kMaxSteps = 200'000;
constexpr size_t kMaxOutputBytes = size_t{256} << 20;
constexpr int64_t kMaxRangeItems = int64_t{1} << 20;

class Interpreter {
 public:
  explicit Interpreter(const json& context) {
    scopes_.emplace_back();
    for (auto it = context.begin(); it != context.end(); ++it) scopes_.back()[it.key()] = *it;
  }

  std::string run(const Body& body) {
    exec(body);
    return std::move(out_);
  }

 private:
  Flow exec(const Body& body) {
    for (const NodePtr& n : body) {
      const Flow flow = exec(*n);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Flow exec(const Node& n) {
    if (++steps_ > kMaxSteps) fail("chat template line {}: more than {} steps", n.line, kMaxSteps);
    if (out_.size() > kMaxOutputBytes)
      fail("chat template: output larger than {} bytes", kMaxOutputBytes);
    switch (n.kind) {
      case NodeKind::Text:
        out_ += n.text;
        return Flow::Normal;
      case NodeKind::Output: {
        const Value v = eval(*n.expr);
        if (!v.undefined) out_ += to_text(v.data);
        return Flow::Normal;
      }
      case NodeKind::If:
        for (const auto& [cond, body] : n.branches) {
          if (!cond || truthy(eval(*cond))) return exec(body);
        }
        return Flow::Normal;
      case NodeKind::For:
        return exec_for(n);
      case NodeKind::Set:
        exec_set(n);
        return Flow::Normal;
      case NodeKind::Break:
        return Flow::Break;
      case NodeKind::Continue:
        return Flow::Continue;
    }
    return Flow::Normal;
  }

  Flow exec_for(const Node& n) {
    const Value iterable = eval(*n.expr);
    json items = json::array();
    if (iterable.data.is_array()) {
      items = iterable.data;
    } else if (iterable.data.is_object()) {
      for (auto it = iterable.data.begin(); it != iterable.data.end(); ++it)
        items.push_back(it.key());
    } else if (iterable.data.is_string()) {
      for (char c : iterable.data.get<std::string>()) items.push_back(std::string(1, c));
    } else if (!iterable.undefined && !iterable.data.is_null()) {
      fail("chat template line {}: cannot loop over {}", n.line, iterable.data.type_name());
    }
    if (n.filter) items = filter_items(n, items);
    if (items.empty()) return exec(n.else_body);
    scopes_.emplace_back();
    const int64_t count = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < count; ++i) {
      if (++steps_ > kMaxSteps)
        fail("chat template line {}: more than {} steps", n.line, kMaxSteps);
      bind_targets(n, items[static_cast<size_t>(i)]);
      scopes_.back()["loop"] = loop_object(i, count, items);
      if (exec(n.body) == Flow::Break) break;
    }
    scopes_.pop_back();
    return Flow::Normal;
  }

  json filter_items(const Node& n, const json& items) {
    json kept = json::array();
    scopes_.emplace_back();
    for (const json& item : items) {
      if (++steps_ > kMaxSteps)
        fail("chat template line {}: more than {} steps", n.line, kMaxSteps);
      bind_targets(n, item);
      if (truthy(eval(*n.filter))) kept.push_back(item);
    }
    scopes_.pop_back();
    return kept;
  }

  void bind_targets(const Node& n, const json& item) {
    if (n.targets.size() == 1) {
      scopes_.back()[n.targets[0]] = item;
      return;
    }
    if (!item.is_array() || item.size() != n.targets.size()) {
      fail("chat template line {}: cannot unpack {} into {} loop variables", n.line,
           item.type_name(), n.targets.size());
    }
    for (size_t k = 0; k < n.targets.size(); ++k) scopes_.back()[n.targets[k]] = item[k];
  }

  static json loop_object(int64_t i, int64_t count, const json& items) {
    json loop = {{"index", i + 1},
                 {"index0", i},
                 {"first", i == 0},
                 {"last", i == count - 1},
                 {"length", count},
                 {"revindex", count - i},
                 {"revindex0", count - i - 1}};
    loop["previtem"] = i > 0 ? items[static_cast<size_t>(i - 1)] : json(nullptr);
    loop["nextitem"] = i + 1 < count ? items[static_cast<size_t>(i + 1)] : json(nullptr);
    return loop;
  }

  void exec_set(const Node& n) {
    Value v = eval(*n.expr);
    if (n.targets.size() == 1) {
      scopes_.back()[n.targets[0]] = v.data;
      return;
    }
    json* ns = lookup(n.targets[0]);
    if (!ns || !ns->is_object()) {
      fail("chat template line {}: '{}' is not a namespace", n.line, n.targets[0]);
    }
    (*ns)[n.targets[1]] = v.data;
  }

  json* lookup(const std::string& name) {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return &found->second;
    }
    return nullptr;
  }

  // --- expressions ---

  Value eval(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Literal:
        return {e.value};
      case ExprKind::Variable: {
        json* v = lookup(e.name);
        return v ? Value{*v} : Value{json(nullptr), true};
      }
      case ExprKind::Attribute:
        return member(eval(*e.args[0]), json(e.name));
      case ExprKind::Subscript:
        return member(eval(*e.args[0]), eval(*e.args[1]).data);
      case ExprKind::Slice:
        return slice(e);
      case ExprKind::Call:
        return call(e);
      case ExprKind::Filter: {
        auto [args, keywords] = eval_args(e);
        return apply_filter(e.name, eval(*e.args[0]), args, keywords, e.line);
      }
      case ExprKind::Test: {
        auto [args, keywords] = eval_args(e);
        return {apply_test(e.name, eval(*e.args[0]), args, e.line) != e.negate};
      }
      case ExprKind::Unary:
        return unary(e);
      case ExprKind::Binary:
        return binary(e);
      case ExprKind::Conditional:
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : Value{json(""), true};
      case ExprKind::List: {
        json list = json::array();
        for (const auto& a : e.args) list.push_back(eval(*a).data);
        return {list};
      }
      case ExprKind::Dict: {
        json dict = json::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          dict[to_text(eval(*e.args[i]).data)] = eval(*e.args[i + 1]).data;
        }
        return {dict};
      }
    }
    fail("chat template line {}: unknown expression", e.line);
  }

  std::pair<std::vector<Value>, std::vector<std::string>> eval_args(const Expr& e) {
    std::vector<Value> args;
    for (size_t i = 1; i < e.args.size(); ++i) args.push_back(eval(*e.args[i]));
    return {std::move(args), e.keywords};
  }

  static Value member(const Value& target, const json& key) {
    const json& d = target.data;
    if (d.is_object() && key.is_string() && d.contains(key.get<std::string>())) {
      return {d[key.get<std::string>()]};
    }
    if ((d.is_array() || d.is_string()) && key.is_number_integer()) {
      int64_t i = key.get<int64_t>();
      const int64_t n = static_cast<int64_t>(d.is_array() ? d.size() : d.get<std::string>().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) {
        if (d.is_array()) return {d[static_cast<size_t>(i)]};
        return {std::string(1, d.get<std::string>()[static_cast<size_t>(i)])};
      }
    }
    return {json(nullptr), true};
  }

  Value slice(const Expr& e) {
    const Value target = eval(*e.args[0]);
    const json& d = target.data;
    const int64_t n = static_cast<int64_t>(d.is_string() ? d.get<std::string>().size() : d.size());
    auto bound = [&](const ExprPtr& p, int64_t fallback) {
      if (!p) return fallback;
      int64_t v = eval(*p).data.get<int64_t>();
      return v < 0 ? std::max<int64_t>(v + n, -1) : std::min(v, n);
    };
    // A step beyond the length takes one item either way; clamping it keeps i += step in range.
    const int64_t step =
        std::clamp<int64_t>(e.args[3] ? eval(*e.args[3]).data.get<int64_t>() : 1, -n - 1, n + 1);
    if (step == 0) fail("chat template line {}: slice step cannot be zero", e.line);
    const int64_t start = bound(e.args[1], step > 0 ? 0 : n - 1);
    const int64_t stop = bound(e.args[2], step > 0 ? n : -1);
    json list = json::array();
    std::string str;
    for (int64_t i = std::max<int64_t>(start, step > 0 ? 0 : -1); step > 0 ? i < stop : i > stop;
         i += step) {
      if (i < 0 || i >= n) break;
      if (d.is_string()) {
        str += d.get<std::string>()[static_cast<size_t>(i)];
      } else {
        list.push_back(d[static_cast<size_t>(i)]);
      }
    }
    return d.is_string() ? Value{str} : Value{list};
  }

  Value call(const Expr& e) {
    auto [args, keywords] = eval_args(e);
    const Expr& callee = *e.args[0];
    if (callee.kind == ExprKind::Attribute) {
      return call_method(callee.name, eval(*callee.args[0]), args, e.line);
    }
    if (callee.kind != ExprKind::Variable)
      fail("chat template line {}: value is not callable", e.line);
    return call_global(callee.name, args, keywords, e.line);
  }

  static Value call_global(const std::string& name, const std::vector<Value>& args,
                           const std::vector<std::string>& keywords, int line) {
    if (name == "raise_exception") {
      fail("chat template: {}", args.empty() ? "raise_exception() called" : to_text(args[0].data));
    }
    if (name == "namespace") {
      json ns = json::object();
      for (size_t i = 0; i < args.size(); ++i) {
        if (!keywords[i].empty()) ns[keywords[i]] = args[i].data;
      }
      return {ns};
    }
    if (name == "range") {
      int64_t start = 0, stop = 0, step = 1;
      if (args.size() == 1) stop = args[0].data.get<int64_t>();
      if (args.size() >= 2) start = args[0].data.get<int64_t>(), stop = args[1].data.get<int64_t>();
      if (args.size() >= 3) step = args[2].data.get<int64_t>();
      if (step == 0) fail("chat template line {}: range() step cannot be zero", line);
      json out = json::array();
      for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
        if (static_cast<int64_t>(out.size()) >= kMaxRangeItems) {
          fail("chat template line {}: range() of more than {} items", line, kMaxRangeItems);
        }
        out.push_back(i);
        if (__builtin_add_overflow(i, step, &i)) break;
      }
      return {out};
    }
    if (name == "strftime_now") {
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[128];
      const std::string format = args.empty() ? "%Y-%m-%d" : to_text(args[0].data);
      const size_t len = std::strftime(buf, sizeof buf, format.c_str(), &tm);
      return {std::string(buf, len)};
    }
    fail("chat template line {}: unknown function '{}'", line, name);
  }

  Value unary(const Expr& e) {
    Value v = eval(*e.args[0]);
    if (e.name == "not") return {!truthy(v)};
    if (!v.data.is_number())
      fail("chat template line {}: unary '{}' needs a number", e.line, e.name);
    if (e.name == "+") return v;
    if (v.data.is_number_integer() &&
        v.data.get<int64_t>() == std::numeric_limits<int64_t>::min()) {
      fail("chat template line {}: integer overflow in unary '-'", e.line);
    }
    return v.data.is_number_integer() ? Value{-v.data.get<int64_t>()}
                                      : Value{-v.data.get<double>()};
  }

  Value binary(const Expr& e) {
    if (e.name == "and") {
      const Value l = eval(*e.args[0]);
      return truthy(l) ? eval(*e.args[1]) : l;
    }
    if (e.name == "or") {
      const Value l = eval(*e.args[0]);
      return truthy(l) ? l : eval(*e.args[1]);
    }
    return binary_op(e.name, eval(*e.args[0]), eval(*e.args[1]), e.line);
  }

  std::vector<std::map<std::string, json>> scopes_;
  std::string out_;
  int64_t steps_ = 0;
};

}  // namespace

std::string render(const Body& body, const json& context) {
  // Type mismatches surface from the JSON values (a string where a number is needed): they are
  // errors in the template, reported like the others.
  try {
    return Interpreter(context).run(body);
  } catch (const json::exception& e) {
    fail("chat template: {}", e.what());
  } catch (const std::logic_error& e) {
    fail("chat template: {}", e.what());
  }
}

}  // namespace torchless::jinja
