#pragma once
// The syntax tree of the Jinja subset that chat templates use (Hugging Face renders them with
// jinja2, trim_blocks and lstrip_blocks on). Expressions and statements are plain nodes with
// children; the interpreter (jinja_interpreter.cpp) walks them.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace torchless::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  Literal,      // value
  Variable,     // name
  Attribute,    // args[0] . name
  Subscript,    // args[0] [ args[1] ]
  Slice,        // args[0] [ args[1] : args[2] : args[3] ] (null children allowed)
  Call,         // args[0] ( args[1..] ) with keyword names in keywords (aligned to args[1..])
  Filter,       // args[0] | name ( args[1..] )
  Test,         // args[0] is [not] name ( args[1..] ); negate
  Unary,        // op args[0]: "not", "-"
  Binary,       // args[0] op args[1]
  Conditional,  // args[1] if args[0] else args[2]
  List,         // [ args... ]
  Dict,         // { args[2i]: args[2i+1] }
};

struct Expr {
  ExprKind kind = ExprKind::Literal;
  nlohmann::json value;  // Literal
  std::string name;      // Variable, Attribute, Call-less names, Filter, Test, op
  std::vector<ExprPtr> args;
  std::vector<std::string> keywords;  // Call/Filter: "" for positional arguments
  bool negate = false;                // Test
  int line = 0;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

enum class NodeKind { Text, Output, If, For, Set, Break, Continue };

struct Node {
  NodeKind kind = NodeKind::Text;
  std::string text;  // Text
  ExprPtr expr;      // Output, Set value, For iterable
  std::vector<std::pair<ExprPtr, Body>>
      branches;                      // If: (condition, body)...; else body last with null condition
  std::vector<std::string> targets;  // For loop variables; Set: name or {namespace, attribute}
  ExprPtr filter;                    // For ... if filter
  Body body;                         // For body
  Body else_body;                    // For else
  int line = 0;
};

}  // namespace torchless::jinja
