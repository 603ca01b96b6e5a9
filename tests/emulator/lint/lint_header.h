// Included by includes_header.metal: the lint follows quoted includes.
#ifndef LINT_HEADER_H
#define LINT_HEADER_H

inline float halve(float x) {
  return x * 0.5;
}

#endif
