// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QRandomGenerator>

#include <optional>

namespace taskdeck {

/*!
 * A W3C Trace Context `traceparent` value: "VERSION-TRACEID-PARENTID-FLAGS", e.g.
 * "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01". Plain value.
 */
struct TraceParent
{
    QByteArray traceId;  //!< 32 lowercase hex digits, not all zero
    QByteArray parentId; //!< 16 lowercase hex digits, not all zero: the caller's span
    QByteArray flags;    //!< 2 lowercase hex digits ("01": sampled)

    /*! "00-TRACEID-PARENTID-FLAGS" (this implementation writes version 00). */
    QByteArray text() const { return "00-" + traceId + '-' + parentId + '-' + flags; }

    /*!
     * Parses a header value as the specification says: version 00 is exactly 55 characters;
     * a later version (not "ff") may carry more after a '-'; the ids are lowercase hex and not
     * all zeros. nullopt for anything else (the caller then starts a trace of its own).
     */
    static std::optional<TraceParent> parse(QByteArrayView value)
    {
        value = value.trimmed();
        if (value.size() < 55 || value.at(2) != '-' || value.at(35) != '-' || value.at(52) != '-')
            return std::nullopt;
        const QByteArrayView version = value.first(2);
        if (!isHex(version) || version == "ff")
            return std::nullopt;
        if (version == "00" ? value.size() != 55 : value.size() > 55 && value.at(55) != '-')
            return std::nullopt;
        TraceParent parsed{value.sliced(3, 32).toByteArray(), value.sliced(36, 16).toByteArray(),
                           value.sliced(53, 2).toByteArray()};
        if (!isHex(parsed.traceId) || !isHex(parsed.parentId) || !isHex(parsed.flags)
            || isZero(parsed.traceId) || isZero(parsed.parentId))
            return std::nullopt;
        return parsed;
    }

    /*! A new trace, sampled, with a new span of ours as the parent. */
    static TraceParent make() { return {randomHex(16), randomHex(8), "01"}; }

    /*! The same trace and flags with a new span of ours as the parent: what is passed on to
     *  the work done for the request. */
    TraceParent child() const { return {traceId, randomHex(8), flags}; }

    /*! \a bytes random bytes as lowercase hex, never all zeros. */
    static QByteArray randomHex(int bytes)
    {
        QByteArray raw(bytes, Qt::Uninitialized);
        do {
            for (char &c : raw)
                c = char(QRandomGenerator::system()->bounded(256));
        } while (isZero(raw.toHex()));
        return raw.toHex();
    }

private:
    static bool isHex(QByteArrayView text)
    {
        for (const char c : text) {
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return false;
        }
        return true;
    }
    static bool isZero(QByteArrayView text)
    {
        for (const char c : text) {
            if (c != '0')
                return false;
        }
        return true;
    }
};

} // namespace taskdeck
