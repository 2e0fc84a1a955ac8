// SPDX-License-Identifier: MIT
#include "runid.h"

#include <QDateTime>
#include <QRandomGenerator>
#include <QUuid>

#include <algorithm>
#include <atomic>
#include <random>

namespace taskdeck {

namespace {

// A generator of this thread, seeded once from the system's: QUuid::createUuid() asks the
// system generator for every id, which on this CPU runs the RDSEED instruction for each 8
// bytes (about 8 % of the thread that starts runs, measured in bench_history).
std::mt19937_64 &threadRandom()
{
    thread_local std::mt19937_64 random = [] {
        std::seed_seq seed{QRandomGenerator::system()->generate(), QRandomGenerator::system()->generate(),
                           QRandomGenerator::system()->generate(), QRandomGenerator::system()->generate()};
        return std::mt19937_64(seed);
    }();
    return random;
}

void appendHex(char16_t *&out, quint64 value, int digits)
{
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
        *out++ = u"0123456789abcdef"[(value >> shift) & 0xf];
}

} // namespace

/*!
 * A time-ordered (version 7) UUID without braces: 48 bits of Unix milliseconds, a 12-bit
 * counter that keeps the ids of one millisecond in order, and 62 random bits. Run ids thus
 * sort by creation, and the history's index on them grows at its end: with random ids
 * every commit rewrote index pages all over the file.
 */
QString newRunId(quint64 *key)
{
    static std::atomic<quint64> last{0}; // (milliseconds << 12) | counter of the latest id
    const quint64 now = quint64(QDateTime::currentMSecsSinceEpoch()) << 12;
    quint64 previous = last.load(std::memory_order_relaxed);
    quint64 next = 0;
    do {
        // A clock that steps back, or more than 4096 ids in one millisecond, borrow from
        // the next millisecond: order wins over exact time.
        next = std::max(now, previous + 1);
    } while (!last.compare_exchange_weak(previous, next, std::memory_order_relaxed));
    const quint64 ms = next >> 12;
    if (key)
        *key = next;

    // Uniqueness within the process rests on the time and counter above; the random bits
    // tell apart ids that other processes make in the same millisecond.
    std::mt19937_64 &random = threadRandom();
    const quint64 bits = random();
    QUuid uuid;
    // The RFC 4122 variant (binary 10) in the top bits of data4[0], 62 random bits after it.
    for (int i = 0; i < 8; ++i)
        uuid.data4[i] = uchar(bits >> (8 * (7 - i)));
    uuid.data4[0] = uchar((uuid.data4[0] & 0x3f) | 0x80);
    uuid.data1 = quint32(ms >> 16);
    uuid.data2 = quint16(ms & 0xffff);
    uuid.data3 = quint16(0x7000 | (next & 0xfff));

    QString id(36, Qt::Uninitialized);
    char16_t *out = reinterpret_cast<char16_t *>(id.data());
    appendHex(out, uuid.data1, 8);
    *out++ = u'-';
    appendHex(out, uuid.data2, 4);
    *out++ = u'-';
    appendHex(out, uuid.data3, 4);
    *out++ = u'-';
    appendHex(out, quint64(uuid.data4[0]) << 8 | uuid.data4[1], 4);
    *out++ = u'-';
    for (int i = 2; i < 8; ++i)
        appendHex(out, uuid.data4[i], 2);
    return id;
}

/*!
 * The key newRunId() made \a id from: its milliseconds and counter, which no other id of this
 * process shares. Read back from the text, so that the engine's map of runs hashes and
 * compares one integer instead of 36 characters that runs made close together mostly share.
 * Another process's id may give the same key: a lookup checks the id too. Empty for a text
 * that is not such an id.
 */
std::optional<quint64> runIdKey(QStringView id)
{
    if (id.size() != 36)
        return std::nullopt;
    quint64 value = 0;
    // Digits 0-7 and 9-12: the milliseconds; 15-17: the counter (14 is the version, 7).
    for (const qsizetype i : {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 15, 16, 17}) {
        const char16_t c = id.at(i).unicode();
        int digit = 0;
        if (c >= u'0' && c <= u'9')
            digit = c - u'0';
        else if (c >= u'a' && c <= u'f')
            digit = c - u'a' + 10;
        else
            return std::nullopt;
        value = (value << 4) | quint64(digit);
    }
    return value;
}

QString newTraceId()
{
    std::mt19937_64 &random = threadRandom();
    quint64 high = 0;
    quint64 low = 0;
    while (high == 0 && low == 0) { // all zeros is not a valid trace id
        high = random();
        low = random();
    }
    QString id(32, Qt::Uninitialized);
    char16_t *out = reinterpret_cast<char16_t *>(id.data());
    appendHex(out, high, 16);
    appendHex(out, low, 16);
    return id;
}

} // namespace taskdeck
