// The generator's lint rejects each construct the emulator cannot run faithfully and each
// violation of Apple's MSL rules that the emulator would accept, naming the file, the line and
// (for Apple's rules) the MSL specification section; it accepts idiomatic code and every
// shipped kernel (tests/emulator/lint/*.metal: one planted violation per rule).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace {

struct Result {
  int status;
  std::string output;
};

Result run_command(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string output;
  std::array<char, 512> buffer;
  while (fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

Result run_lint(const std::string& file, const std::string& display,
                const std::string& options = "") {
  return run_command(std::string(MSLEMU_GEN_PATH) + " " + options + " --lint " + file + " " +
                     display);
}

Result lint(const std::string& name, const std::string& options = "") {
  return run_lint(std::string(TORCHLESS_SOURCE_DIR) + "/tests/emulator/lint/" + name,
                  "lint/" + name, options);
}

struct Case {
  const char* file;
  int line;
  const char* why;
  const char* section = nullptr;  // the MSL specification section, for Apple's rules
};

class LintTest : public ::testing::TestWithParam<Case> {};

TEST_P(LintTest, RejectsWithFileLineAndReason) {
  const Case& c = GetParam();
  const Result r = lint(c.file);
  EXPECT_EQ(r.status, 1) << r.output;
  const std::string where =
      std::string("lint/") + c.file + ":" + std::to_string(c.line) + ": error: ";
  const size_t at = r.output.find(where + c.why);
  ASSERT_NE(at, std::string::npos) << r.output;
  if (c.section) {
    const std::string line = r.output.substr(at, r.output.find('\n', at) - at);
    EXPECT_NE(line.find(std::string("[MSL spec ") + c.section), std::string::npos) << line;
  }
}

INSTANTIATE_TEST_SUITE_P(
    ForbiddenConstructs, LintTest,
    ::testing::Values(
        Case{"swizzle_assignment.metal", 6, "assignment to a multi-component swizzle"},
        Case{"function_constant.metal", 4, "function constants are not supported"},
        Case{"threadgroup_array.metal", 5, "threadgroup variable declared in a function body"},
        Case{"uninstantiated_kernel_template.metal", 4,
             "kernel template 'scale' has no `template [[host_name(\"...\")]]` instantiation"},
        Case{"instantiates_unknown_kernel.metal", 7,
             "`twice_f32` instantiates 'twice', which is not a kernel template of this file"},
        Case{"half_literal.metal", 5, "half literals like 0.5h"},
        Case{"address_space_overload.metal", 5, "'first' is overloaded on address space only"},
        Case{"constant_const.metal", 4, "`constant const`"},
        Case{"thread_elements.metal", 6, "thread_elements()"},
        Case{"atomics.metal", 4, "atomics are not supported"},
        // Apple's rules (msl_spec_lint.cpp).
        Case{"builtin_mixed_width.metal", 7,
             "kernel 'k': [[threads_per_threadgroup]] is uint but [[threadgroup_position_in_grid]] "
             "is uint3; the thread and threadgroup position and size attributes of one kernel "
             "must be all scalars or all vectors",
             "5.2.3.6"},
        Case{"builtin_pair_type.metal", 5,
             "kernel 'k': [[threads_per_grid]] is ushort2 but [[thread_position_in_grid]] is "
             "uint2; these two must have the same type",
             "5.2.3.6"},
        Case{"builtin_type.metal", 5, "[[thread_position_in_grid]] 'gid' has type 'int'",
             "5.2.3.6"},
        Case{"missing_address_space.metal", 4,
             "kernel argument 'v' is a pointer or reference without an address space", "4 "},
        Case{"constant_argument.metal", 4,
             "kernel argument 'scale': only a pointer or reference with a [[buffer(n)]] "
             "attribute may be passed in the constant address space",
             "4.2"},
        Case{"argument_address_space.metal", 5,
             "kernel argument 'scratch': a [[buffer(n)]] argument must be a device or constant "
             "pointer or reference",
             "5.2.1"},
        Case{"attribute_index_range.metal", 5,
             "kernel argument 'w': [[buffer(31)]] is out of range; indices are 0 to 30", "5.2.1"},
        Case{"attribute_index_duplicate.metal", 5,
             "kernel 'k': [[buffer(1)]] is used by 'v' and 'w'", "5.2.1"},
        Case{"program_scope_threadgroup.metal", 4, "threadgroup variable at program scope", "4.4"},
        Case{"program_scope_variable.metal", 4,
             "program-scope variable outside the constant address space", "4.2"},
        Case{"program_scope_variable.metal", 5,
             "program-scope constant variable without an initializer", "4.2"},
        Case{"recursion.metal", 5, "'sum_to' calls itself", "1.4.4"},
        Case{"virtual_function.metal", 5, "virtual functions are not supported", "1.4.4"},
        Case{"exceptions.metal", 5, "exception handling (throw, try, catch)", "1.4.4"},
        Case{"function_pointer.metal", 7, "function pointer", "1.4.4"},
        Case{"new_delete.metal", 9, "the new operator is not supported", "1.4.4"},
        Case{"new_delete.metal", 11, "the delete operator is not supported", "1.4.4"},
        Case{"removed_cxx_features.metal", 4,
             "dynamic_cast, typeid, noexcept and thread_local are not supported", "1.4.4"},
        Case{"bfloat_version.metal", 4,
             "'bfloat' needs MSL 3.1, and this library is compiled for MSL 3.0", "2.1"},
        Case{"simdgroup_matrix_type.metal", 5,
             "simdgroup_matrix of 'int': the element type must be float, half or bfloat", "2.4"},
        Case{"max_total_threads.metal", 4,
             "[[max_total_threads_per_threadgroup(2048)]]: the limit must be 1 to 1024", "5.1"},
        Case{"double_type.metal", 5, "MSL has no double", "2.1"},
        Case{"double_literal.metal", 6, "floating-point literal without a suffix", "2.1"},
        Case{"kernel_return_type.metal", 4, "a kernel function must return void", "5.1"}),
    [](const auto& info) {
      std::string name = info.param.file;
      name = name.substr(0, name.find('.')) + "_" + std::to_string(info.index);
      return name;
    });

// MLX's and llama.cpp's idiom for shader variants: a kernel template and one explicit
// instantiation per variant, named by [[host_name]], in both of Apple's spellings.
TEST(Lint, AcceptsHostNameInstantiationsOfKernelTemplates) {
  const Result r = lint("host_name_template.metal");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

TEST(Lint, AcceptsIdiomaticCode) {
  const Result r = lint("clean.metal");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

// One finding per planted violation: the version guard in bfloat_version.metal keeps the
// guarded bfloat out, and a suffixed literal next to the unsuffixed one is not reported.
TEST(Lint, ReportsOnlyThePlantedViolation) {
  for (const char* file : {"bfloat_version.metal", "double_literal.metal"}) {
    const Result r = lint(file);
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

TEST(Lint, FollowsQuotedIncludes) {
  const Result r = lint("includes_header.metal");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("lint/lint_header.h:6: error: floating-point literal without a suffix"),
            std::string::npos)
      << r.output;
}

// What fails the build: generating a kernel file that breaks a rule fails and writes nothing.
TEST(Lint, GenerationFailsOnAViolation) {
  const std::string out = ::testing::TempDir() + "lint_generation_test.emu.cpp";
  std::filesystem::remove(out);
  const Result r = run_command(std::string(MSLEMU_GEN_PATH) + " " + TORCHLESS_SOURCE_DIR +
                               "/tests/emulator/lint/builtin_mixed_width.metal " + out +
                               " lint/builtin_mixed_width.metal mslemu_register_lint_test");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("lint/builtin_mixed_width.metal:7: error:"), std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(Lint, AcceptsBfloatWhenCompiledForMsl31) {
  const Result r = lint("bfloat_version.metal", "--msl-version=3.1");
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(Lint, RejectsAnUnknownLanguageVersion) {
  EXPECT_NE(lint("clean.metal", "--msl-version=three").status, 0);
}

// The build lints them too (cmake/MetalEmulator.cmake); this says so in the test report.
TEST(Lint, AcceptsEveryShippedKernel) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(TORCHLESS_SOURCE_DIR) / "src/torchless/backends/metal/kernels";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".metal") continue;
    ++files;
    const Result r = run_lint(entry.path().string(), entry.path().filename().string());
    EXPECT_EQ(r.status, 0) << r.output;
  }
  EXPECT_GT(files, 10);
}

}  // namespace
