// SPDX-License-Identifier: MIT
#include "task.h"

#include <QJsonArray>

#include <cxxabi.h>
#include <execinfo.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

// The stack where a TaskError was made: the nearest thing C++ has to the failure's trace.
QString captureStack()
{
    void *frames[48];
    const int count = backtrace(frames, 48);
    std::unique_ptr<char *, decltype(&std::free)> symbols(backtrace_symbols(frames, count),
                                                          &std::free);
    if (!symbols)
        return QString();
    QStringList lines;
    // Frame 0 is this function and 1 the TaskError constructor.
    for (int i = 2; i < count; ++i) {
        QString line = QString::fromLocal8Bit(symbols.get()[i]);
        // "binary(_ZN3foo3barEv+0x12) [0x...]": demangle the part in parentheses.
        const qsizetype open = line.indexOf(u'(');
        const qsizetype plus = line.indexOf(u'+', open);
        if (open >= 0 && plus > open + 1) {
            const QByteArray mangled = line.mid(open + 1, plus - open - 1).toLatin1();
            int status = 0;
            std::unique_ptr<char, decltype(&std::free)> demangled(
                abi::__cxa_demangle(mangled.constData(), nullptr, nullptr, &status), &std::free);
            if (status == 0 && demangled)
                line = line.left(open + 1) + QString::fromLatin1(demangled.get()) + line.mid(plus);
        }
        lines << u"  #"_s + QString::number(i - 2) + u' ' + line;
    }
    return lines.join(u'\n');
}

} // namespace

std::chrono::milliseconds RetryPolicy::baseDelay(int failedAttempt) const
{
    const double factor = std::pow(std::max(1.0, multiplier), std::max(0, failedAttempt - 1));
    const double ms = std::min(double(maxDelay.count()), double(initialDelay.count()) * factor);
    return std::chrono::milliseconds(qint64(ms));
}

TaskError::TaskError(const QString &message, const QString &kind, bool transient,
                     const QString &detail)
    : std::runtime_error(message.toStdString())
    , m_message(message)
    , m_kind(kind.isEmpty() ? u"TaskError"_s : kind)
    , m_detail(detail.isEmpty() ? u"stack:\n"_s + captureStack() : detail)
    , m_transient(transient)
{
}

bool isValidTaskKey(const QString &key, QString *why)
{
    auto fail = [why](const QString &message) {
        if (why)
            *why = message;
        return false;
    };
    if (key.isEmpty())
        return fail(u"a task key must not be empty"_s);
    if (key.size() > 64)
        return fail(u"task key \"%1\" is longer than 64 characters"_s.arg(key.left(64)));
    for (QChar c : key) {
        const bool ok = (c >= u'a' && c <= u'z') || (c >= u'A' && c <= u'Z')
                        || (c >= u'0' && c <= u'9') || c == u'-' || c == u'_' || c == u'.';
        if (!ok) {
            return fail(u"task key \"%1\" has '%2'; accepted: letters, digits, '-', '_' and '.'"_s
                            .arg(key, QString(c)));
        }
    }
    return true;
}

QJsonObject Task::toJson() const
{
    QJsonArray fieldArray;
    for (const Field &f : fields)
        fieldArray.append(f.toJson());
    QJsonObject o{
        {u"key"_s, key},
        {u"title"_s, title.isEmpty() ? key : title},
        {u"description"_s, description},
        {u"category"_s, category},
        {u"icon"_s, icon},
        {u"tags"_s, QJsonArray::fromStringList(tags)},
        {u"danger"_s, danger},
        {u"expensive"_s, expensive},
        {u"fields"_s, fieldArray},
        {u"maxConcurrent"_s, maxConcurrent},
        {u"maxAttempts"_s, retry.maxAttempts},
    };
    o.insert(u"timeoutMs"_s, timeout ? QJsonValue(qint64(timeout->count())) : QJsonValue());
    return o;
}

} // namespace taskdeck
