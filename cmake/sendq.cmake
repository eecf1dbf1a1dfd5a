# sendq_library(NAME SOURCES... DEPS ...): libs/<name> with include/ public.
function(sendq_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(sendq_${name} STATIC ${A_SOURCES})
  add_library(sendq::${name} ALIAS sendq_${name})
  target_include_directories(sendq_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                           PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(sendq_${name} PUBLIC ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS})
endfunction()

# sendq_unit_test(NAME SOURCES... DEPS ...): a GoogleTest binary registered with ctest.
function(sendq_unit_test name)
  if(NOT SENDQ_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE SENDQ_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/support)  # scratch_dir.hpp
  if(SENDQ_SANITIZE)
    # The tests' own files at -O0 (the code under test keeps SENDQ_SANITIZE_FLAGS): optimizing them
    # was half of a sanitizer build's compile time.
    target_compile_options(${name} PRIVATE ${SENDQ_SANITIZE_TEST_FLAGS})
  endif()
  if(SENDQ_SANITIZE MATCHES "thread")
    # Lets TSan see librdkafka's C11 threads and locks (the file says why).
    target_sources(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/support/tsan_c11_threads.cpp)
  endif()
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 PROPERTIES LABELS unit TIMEOUT 120)
endfunction()
