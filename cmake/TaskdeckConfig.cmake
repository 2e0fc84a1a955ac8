# SPDX-License-Identifier: MIT
# One INTERFACE target that carries the language standard, warnings and Qt strictness
# defines. Every Taskdeck target links it.
option(TASKDECK_WERROR "Treat compiler warnings as errors" OFF)
option(TASKDECK_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(TASKDECK_TSAN "Build with ThreadSanitizer (see docs/testing-sanitizers.md)" OFF)
option(TASKDECK_FUZZ "Build everything with libFuzzer coverage, ASan and UBSan (clang; see fuzz/README.md)" OFF)
if(TASKDECK_TSAN AND (TASKDECK_SANITIZE OR TASKDECK_FUZZ))
    message(FATAL_ERROR "TASKDECK_TSAN cannot be combined with TASKDECK_SANITIZE or TASKDECK_FUZZ")
endif()

add_library(taskdeck_build_config INTERFACE)
add_library(Taskdeck::BuildConfig ALIAS taskdeck_build_config)

target_compile_features(taskdeck_build_config INTERFACE cxx_std_20)
target_compile_options(taskdeck_build_config INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
    -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
    $<$<BOOL:${TASKDECK_WERROR}>:-Werror>)
target_compile_definitions(taskdeck_build_config INTERFACE
    QT_NO_CAST_FROM_ASCII
    QT_NO_CAST_TO_ASCII
    QT_NO_CAST_FROM_BYTEARRAY
    QT_USE_QSTRINGBUILDER
    QT_NO_NARROWING_CONVERSIONS_IN_CONNECT
    QT_NO_URL_CAST_FROM_STRING
    QT_STRICT_ITERATORS
    QT_DISABLE_DEPRECATED_BEFORE=0x060400)

if(TASKDECK_SANITIZE)
    target_compile_options(taskdeck_build_config INTERFACE
        -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(taskdeck_build_config INTERFACE -fsanitize=address,undefined)
endif()

# ThreadSanitizer: our code is instrumented, Qt is not (see tests/tsan.supp for the reports
# inside Qt and system libraries that are suppressed, and why).
if(TASKDECK_TSAN)
    target_compile_options(taskdeck_build_config INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(taskdeck_build_config INTERFACE -fsanitize=thread)
endif()

# Fuzzing: every Taskdeck library gets libFuzzer's coverage instrumentation and ASan/UBSan;
# only the fuzz targets link libFuzzer's driver (fuzz/CMakeLists.txt). Needs clang.
if(TASKDECK_FUZZ)
    if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
        message(FATAL_ERROR "TASKDECK_FUZZ needs clang (the fuzz preset uses clang++-16)")
    endif()
    target_compile_options(taskdeck_build_config INTERFACE
        -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
        -fno-sanitize-recover=undefined)
    target_link_options(taskdeck_build_config INTERFACE -fsanitize=address,undefined)
endif()
