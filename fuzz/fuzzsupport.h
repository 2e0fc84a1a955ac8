// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QString>
#include <QtGlobal>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

/*!
 * What every fuzz target shares: the libFuzzer entry point it defines, a quiet Qt message
 * handler (the code under test warns about bad input, which is the point of the input), and
 * FUZZ_CHECK for the properties a target asserts beyond "no crash".
 */

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size);

namespace taskdeck::fuzz {

/*! Silences qDebug/qWarning; qFatal still aborts. Call once per process. */
inline void quietQtMessages()
{
    static const bool installed = [] {
        qInstallMessageHandler([](QtMsgType type, const QMessageLogContext &, const QString &message) {
            if (type == QtFatalMsg) {
                std::fprintf(stderr, "qFatal: %s\n", qPrintable(message));
                std::abort();
            }
        });
        return true;
    }();
    Q_UNUSED(installed);
}

/*! The input as a QByteArray that owns a copy (the fuzzer's buffer is only lent). */
inline QByteArray bytes(const std::uint8_t *data, std::size_t size)
{
    return QByteArray(reinterpret_cast<const char *>(data), qsizetype(size));
}

} // namespace taskdeck::fuzz

/*! Aborts with the failed condition when a property a target checks does not hold. */
#define FUZZ_CHECK(condition)                                                                \
    do {                                                                                     \
        if (!(condition)) {                                                                  \
            std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,         \
                         #condition);                                                        \
            std::abort();                                                                    \
        }                                                                                    \
    } while (false)
