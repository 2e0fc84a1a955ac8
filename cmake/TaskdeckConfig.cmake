# SPDX-License-Identifier: MIT
# One INTERFACE target that carries the language standard, warnings and Qt strictness
# defines. Every Taskdeck target links it.
option(TASKDECK_WERROR "Treat compiler warnings as errors" OFF)
option(TASKDECK_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

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
