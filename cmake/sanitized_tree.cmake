# CI's fuzzing and sanitizer runs, as ctest tests of the main build (CI runs nothing
# but scripts/setup and ctest). When clang-14 with its sanitizer and libFuzzer
# runtimes is installed (scripts/setup installs it), this build also builds a second
# tree, build/sanitize, with clang and SPINOUT_SANITIZE, and ctest runs:
#   Fuzz.NAME          fuzz/NAME_fuzz.cpp for SPINOUT_FUZZ_SECONDS over its corpus
#   Sanitize.*_tests   the unit, cli and lv2 tests built with ASan and UBSan
# Any crash, sanitizer report or failed test fails the test. Without clang the main
# build works as before, without these tests.
option(SPINOUT_SANITIZED_TESTS "Also build build/sanitize with clang-14 and test it" ON)
set(SPINOUT_FUZZ_SECONDS 25 CACHE STRING "Seconds each fuzz target runs under ctest")
if(NOT SPINOUT_SANITIZED_TESTS)
  return()
endif()

find_program(SPINOUT_CLANG clang-14)
find_program(SPINOUT_CLANGXX clang++-14)
set(probe_result 1)
if(SPINOUT_CLANG AND SPINOUT_CLANGXX)
  # clang alone is not enough: the fuzzer and sanitizer runtimes must link
  set(probe ${CMAKE_BINARY_DIR}/CMakeFiles/spinout_fuzz_probe)
  file(WRITE ${probe}.cpp "#include <cstddef>\n#include <cstdint>\n"
       "extern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
  execute_process(COMMAND ${SPINOUT_CLANGXX} -fsanitize=fuzzer,address,undefined ${probe}.cpp
                          -o ${probe}
                  RESULT_VARIABLE probe_result OUTPUT_QUIET ERROR_QUIET)
endif()
if(NOT probe_result EQUAL 0)
  message(STATUS "clang-14 with libFuzzer not found: no sanitized tree, no Fuzz.* or "
                 "Sanitize.* tests (scripts/setup installs clang-14 and libclang-rt-14-dev)")
  return()
endif()

include(ExternalProject)
set(SPINOUT_SANITIZED_DIR ${CMAKE_BINARY_DIR}/sanitize)
ExternalProject_Add(spinout_sanitized
  SOURCE_DIR ${PROJECT_SOURCE_DIR}
  BINARY_DIR ${SPINOUT_SANITIZED_DIR}
  PREFIX ${CMAKE_BINARY_DIR}/sanitize-steps
  CMAKE_ARGS -DCMAKE_C_COMPILER=${SPINOUT_CLANG} -DCMAKE_CXX_COMPILER=${SPINOUT_CLANGXX}
             -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPINOUT_SANITIZE=ON
  BUILD_ALWAYS ON # its sources are this project's: let its own make decide
  INSTALL_COMMAND "")

file(GLOB fuzz_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/fuzz/*_fuzz.cpp)
foreach(source ${fuzz_sources})
  get_filename_component(target ${source} NAME_WE)
  string(REGEX REPLACE "_fuzz$" "" name ${target})
  # new inputs go to build/fuzz-corpus/NAME (kept between runs); the seeds in
  # fuzz/corpus/NAME and the dictionary fuzz/NAME.dict (both optional) are only read;
  # a crashing input is saved as build/fuzz-crash-NAME-*
  set(corpus ${CMAKE_BINARY_DIR}/fuzz-corpus/${name})
  file(MAKE_DIRECTORY ${corpus})
  set(seeds)
  if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/fuzz/corpus/${name})
    set(seeds ${PROJECT_SOURCE_DIR}/fuzz/corpus/${name})
  endif()
  set(dict)
  if(EXISTS ${PROJECT_SOURCE_DIR}/fuzz/${name}.dict)
    set(dict -dict=${PROJECT_SOURCE_DIR}/fuzz/${name}.dict)
  endif()
  # A fixed seed: a CI run mostly repeats the last one's walk (the path also depends on
  # the build's addresses and speed), so it fails for a change more than for chance. Exploring (other seeds, long runs) is scripts/fuzz's job; what it finds
  # becomes a seed in fuzz/corpus/NAME.
  add_test(NAME Fuzz.${name}
           COMMAND ${SPINOUT_SANITIZED_DIR}/fuzz/${target} -seed=1 -max_total_time=${SPINOUT_FUZZ_SECONDS}
                   -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${dict}
                   -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz-crash-${name}- ${corpus} ${seeds}
           WORKING_DIRECTORY ${corpus})
  set_tests_properties(Fuzz.${name} PROPERTIES TIMEOUT 300)
endforeach()

# Their own temporary folder: the tests write files of fixed names there, and ctest
# runs these beside the same tests of the main build.
set(sanitized_tmp ${CMAKE_BINARY_DIR}/sanitize-tmp)
file(MAKE_DIRECTORY ${sanitized_tmp})
foreach(suite unit cli lv2)
  add_test(NAME Sanitize.${suite}_tests COMMAND ${SPINOUT_SANITIZED_DIR}/tests/${suite}_tests)
  set_tests_properties(Sanitize.${suite}_tests PROPERTIES TIMEOUT 900
                       ENVIRONMENT TMPDIR=${sanitized_tmp})
endforeach()
