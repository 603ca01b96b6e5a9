#include "torchless/tokenizer/jinja/jinja_parser.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "torchless/core/error.h"
#include "torchless/tokenizer/jinja/jinja_lexer.h"

namespace torchless::jinja {
namespace {

// Deeper nesting than any real template uses; the parser, the interpreter and the AST's
// destructor all recurse once per level, so unbounded nesting would overflow the stack.
constexpr int kMaxNesting = 128;

// The depth of an expression tree, counted only up to `limit` so that the walk itself stays
// shallow. Chains such as a+b+c+... nest without recursing in the parser.
int tree_depth(const Expr& e, int limit) {
  if (limit <= 1) return 1;
  int deepest = 0;
  for (const ExprPtr& arg : e.args) {
    if (arg) deepest = std::max(deepest, tree_depth(*arg, limit - 1));
  }
  return 1 + deepest;
}

ExprPtr make_expr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse() {
    Body body = parse_body({});
    if (peek().kind != TokenKind::End) fail_here("unexpected '{}'", stmt_keyword());
    return body;
  }

 private:
  // --- statements ---

  // Parses nodes until a {% keyword %} in `stops` (left unconsumed) or the end of input.
  Body parse_body(const std::set<std::string>& stops) {
    const NestingGuard guard(*this);
    Body body;
    while (peek().kind != TokenKind::End) {
      const Token& tok = peek();
      if (tok.kind == TokenKind::Text) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::Text;
        n->text = next().text;
        body.push_back(std::move(n));
      } else if (tok.kind == TokenKind::ExprBegin) {
        next();
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::Output;
        n->line = tok.line;
        n->expr = parse_expr();
        expect(TokenKind::ExprEnd, "}}");
        body.push_back(std::move(n));
      } else if (tok.kind == TokenKind::StmtBegin) {
        if (stops.count(stmt_keyword())) return body;
        body.push_back(parse_statement());
      } else {
        fail_here("unexpected token '{}'", tok.text);
      }
    }
    if (!stops.empty()) fail_here("missing {{% {} %}}", *stops.rbegin());
    return body;
  }

  std::string stmt_keyword() const {
    return pos_ + 1 < t_.size() && t_[pos_ + 1].kind == TokenKind::Name ? t_[pos_ + 1].text : "";
  }

  NodePtr parse_statement() {
    const int line = next().line;  // {%
    const std::string kw = expect_name();
    auto n = std::make_unique<Node>();
    n->line = line;
    if (kw == "if") {
      parse_if(*n);
    } else if (kw == "for") {
      parse_for(*n);
    } else if (kw == "set") {
      parse_set(*n);
    } else if (kw == "break" || kw == "continue") {
      n->kind = kw == "break" ? NodeKind::Break : NodeKind::Continue;
      expect(TokenKind::StmtEnd, "%}");
    } else if (kw == "generation" || kw == "endgeneration") {
      // Hugging Face's marker for assistant-token masks: renders its body unchanged.
      n->kind = NodeKind::Text;
      expect(TokenKind::StmtEnd, "%}");
    } else {
      fail("chat template line {}: unsupported statement '{{% {} %}}'", line, kw);
    }
    return n;
  }

  void parse_if(Node& n) {
    n.kind = NodeKind::If;
    ExprPtr cond = parse_expr();
    expect(TokenKind::StmtEnd, "%}");
    while (true) {
      Body body = parse_body({"elif", "else", "endif"});
      n.branches.emplace_back(std::move(cond), std::move(body));
      next();  // {%
      const std::string kw = expect_name();
      if (kw == "endif") break;
      cond = kw == "elif" ? parse_expr() : nullptr;
      expect(TokenKind::StmtEnd, "%}");
      if (kw == "else") {
        n.branches.emplace_back(nullptr, parse_body({"endif"}));
        next();
        expect_name();
        break;
      }
    }
    expect(TokenKind::StmtEnd, "%}");
  }

  void parse_for(Node& n) {
    n.kind = NodeKind::For;
    n.targets.push_back(expect_name());
    while (accept_op(",")) n.targets.push_back(expect_name());
    if (expect_name() != "in") fail_here("expected 'in' in for loop");
    n.expr = parse_ternary(false);
    if (accept_name("if")) n.filter = parse_or();
    expect(TokenKind::StmtEnd, "%}");
    n.body = parse_body({"else", "endfor"});
    next();
    if (expect_name() == "else") {
      expect(TokenKind::StmtEnd, "%}");
      n.else_body = parse_body({"endfor"});
      next();
      expect_name();
    }
    expect(TokenKind::StmtEnd, "%}");
  }

  void parse_set(Node& n) {
    n.kind = NodeKind::Set;
    n.targets.push_back(expect_name());
    if (accept_op(".")) n.targets.push_back(expect_name());
    if (!accept_op("=")) fail_here("block assignment '{{% set x %}}' is not supported");
    n.expr = parse_expr();
    expect(TokenKind::StmtEnd, "%}");
  }

  // --- expressions, lowest precedence first ---

  ExprPtr parse_expr() {
    const bool outermost = !in_expr_;
    in_expr_ = true;
    ExprPtr e = parse_ternary(true);
    if (outermost) {
      in_expr_ = false;
      if (tree_depth(*e, kMaxNesting + 1) > kMaxNesting) {
        fail_here("expression nested deeper than {} levels", kMaxNesting);
      }
    }
    return e;
  }

  ExprPtr parse_ternary(bool allow_if) {
    const NestingGuard guard(*this);
    ExprPtr value = parse_or();
    if (!allow_if || !is_name("if")) return value;
    const int line = next().line;
    auto e = make_expr(ExprKind::Conditional, line);
    e->args.push_back(parse_or());
    e->args.push_back(std::move(value));
    e->args.push_back(accept_name("else") ? parse_ternary(true) : nullptr);
    return e;
  }

  ExprPtr binary(std::string op, ExprPtr l, ExprPtr r) {
    auto e = make_expr(ExprKind::Binary, peek().line);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (accept_name("or")) l = binary("or", std::move(l), parse_and());
    return l;
  }

  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (accept_name("and")) l = binary("and", std::move(l), parse_not());
    return l;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      const NestingGuard guard(*this);
      auto e = make_expr(ExprKind::Unary, next().line);
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr l = parse_concat();
    while (true) {
      static const std::set<std::string> kOps = {"==", "!=", "<", ">", "<=", ">="};
      if (peek().kind == TokenKind::Op && kOps.count(peek().text)) {
        std::string op = next().text;
        l = binary(op, std::move(l), parse_concat());
      } else if (accept_name("in")) {
        l = binary("in", std::move(l), parse_concat());
      } else if (is_name("not") && pos_ + 1 < t_.size() && t_[pos_ + 1].text == "in") {
        pos_ += 2;
        l = binary("not in", std::move(l), parse_concat());
      } else if (accept_name("is")) {
        l = parse_test(std::move(l));
      } else {
        return l;
      }
    }
  }

  ExprPtr parse_test(ExprPtr subject) {
    auto e = make_expr(ExprKind::Test, peek().line);
    e->negate = accept_name("not");
    e->name = expect_name();
    e->args.push_back(std::move(subject));
    if (accept_op("(")) {
      parse_call_args(*e);
    } else if (peek().kind == TokenKind::String || peek().kind == TokenKind::Number) {
      e->args.push_back(parse_primary());  // "is divisibleby 3", "is equalto 'x'"
      e->keywords.push_back("");
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr l = parse_additive();
    while (accept_op("~")) l = binary("~", std::move(l), parse_additive());
    return l;
  }

  ExprPtr parse_additive() {
    ExprPtr l = parse_multiplicative();
    while (is_op("+") || is_op("-")) {
      std::string op = next().text;
      l = binary(op, std::move(l), parse_multiplicative());
    }
    return l;
  }

  ExprPtr parse_multiplicative() {
    ExprPtr l = parse_unary();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().text;
      l = binary(op, std::move(l), parse_unary());
    }
    return l;
  }

  ExprPtr parse_unary() {
    if (is_op("-") || is_op("+")) {
      const NestingGuard guard(*this);
      auto e = make_expr(ExprKind::Unary, peek().line);
      e->name = next().text;
      e->args.push_back(parse_unary());
      return e;
    }
    return parse_postfix(parse_primary());
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (accept_op(".")) {
        auto a = make_expr(ExprKind::Attribute, peek().line);
        a->name = expect_name();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (accept_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (accept_op("(")) {
        auto c = make_expr(ExprKind::Call, peek().line);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else if (accept_op("|")) {
        auto f = make_expr(ExprKind::Filter, peek().line);
        f->name = expect_name();
        f->args.push_back(std::move(e));
        if (accept_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    auto parts = std::vector<ExprPtr>();
    bool is_slice = false;
    for (int i = 0; i < 3; ++i) {
      parts.push_back(is_op(":") || is_op("]") ? nullptr : parse_expr());
      if (!accept_op(":")) break;
      is_slice = true;
    }
    if (!is_slice && !parts[0]) fail_here("empty subscript '[]'");
    expect_op("]");
    auto e = make_expr(is_slice ? ExprKind::Slice : ExprKind::Subscript, peek().line);
    e->args.push_back(std::move(target));
    for (auto& p : parts) e->args.push_back(std::move(p));
    while (is_slice && e->args.size() < 4) e->args.push_back(nullptr);
    return e;
  }

  // After "(": positional and keyword arguments up to ")".
  void parse_call_args(Expr& call) {
    while (!accept_op(")")) {
      std::string keyword;
      if (peek().kind == TokenKind::Name && pos_ + 1 < t_.size() && t_[pos_ + 1].text == "=") {
        keyword = next().text;
        next();
      }
      call.args.push_back(parse_expr());
      call.keywords.push_back(keyword);
      if (!accept_op(",")) {
        expect_op(")");
        break;
      }
    }
  }

  ExprPtr parse_primary() {
    const Token& tok = peek();
    auto e = make_expr(ExprKind::Literal, tok.line);
    if (tok.kind == TokenKind::String) {
      std::string s = next().text;
      while (peek().kind == TokenKind::String) s += next().text;  // adjacent literals
      e->value = s;
    } else if (tok.kind == TokenKind::Number) {
      const std::string& text = next().text;
      try {
        if (text.find('.') != std::string::npos) {
          e->value = std::stod(text);
        } else {
          e->value = std::stoll(text);
        }
      } catch (const std::out_of_range&) {
        fail("chat template line {}: number {} is out of range", tok.line, text);
      }
    } else if (tok.kind == TokenKind::Name) {
      return parse_name_primary();
    } else if (accept_op("(")) {
      e = parse_expr();
      expect_op(")");
    } else if (accept_op("[")) {
      e->kind = ExprKind::List;
      while (!accept_op("]")) {
        e->args.push_back(parse_expr());
        if (!accept_op(",")) {
          expect_op("]");
          break;
        }
      }
    } else if (accept_op("{")) {
      e->kind = ExprKind::Dict;
      while (!accept_op("}")) {
        e->args.push_back(parse_expr());
        expect_op(":");
        e->args.push_back(parse_expr());
        if (!accept_op(",")) {
          expect_op("}");
          break;
        }
      }
    } else {
      fail_here("unexpected '{}' in expression", tok.text);
    }
    return e;
  }

  ExprPtr parse_name_primary() {
    const Token tok = next();
    auto e = make_expr(ExprKind::Literal, tok.line);
    if (tok.text == "true" || tok.text == "True") {
      e->value = true;
    } else if (tok.text == "false" || tok.text == "False") {
      e->value = false;
    } else if (tok.text == "none" || tok.text == "None") {
      e->value = nullptr;
    } else {
      e->kind = ExprKind::Variable;
      e->name = tok.text;
    }
    return e;
  }

  // --- token helpers ---
  const Token& peek() const { return t_[pos_]; }
  const Token& next() { return t_[pos_ < t_.size() - 1 ? pos_++ : pos_]; }
  bool is_op(std::string_view op) const {
    return peek().kind == TokenKind::Op && peek().text == op;
  }
  bool is_name(std::string_view name) const {
    return peek().kind == TokenKind::Name && peek().text == name;
  }
  bool accept_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool accept_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) fail_here("expected '{}'", op);
  }
  void expect(TokenKind kind, std::string_view what) {
    if (peek().kind != kind) fail_here("expected '{}'", what);
    next();
  }
  std::string expect_name() {
    if (peek().kind != TokenKind::Name) fail_here("expected a name");
    return next().text;
  }
  template <typename... Args>
  [[noreturn]] void fail_here(fmt::format_string<Args...> f, Args&&... args) const {
    fail("chat template line {}: {} (near '{}')", peek().line,
         fmt::format(f, std::forward<Args>(args)...), peek().text);
  }

  // Counts the recursion of the parser (bodies, sub-expressions) and fails past kMaxNesting.
  struct NestingGuard {
    explicit NestingGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail_here("nesting deeper than {} levels", kMaxNesting);
    }
    ~NestingGuard() { --p.depth_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;
    Parser& p;
  };

  std::vector<Token> t_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool in_expr_ = false;
};

}  // namespace

Body parse_template(std::string_view source) {
  return Parser(lex_template(source)).parse();
}

}  // namespace torchless::jinja
