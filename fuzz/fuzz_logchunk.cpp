// SPDX-License-Identifier: MIT
// The history's log chunk decoder (core/store/logchunk.*) on arbitrary bytes, as a damaged or
// hostile history file would hand them over. Properties: a chunk that decodes re-encodes to
// one that decodes to the same lines; a rejected chunk appends nothing; line numbers never
// go down; decoding from a later line gives a suffix of the lines.
#include "fuzzsupport.h"

#include "logchunk.h"

#include <limits>

using namespace taskdeck;

namespace {

bool sameLines(const LogLines &a, const LogLines &b)
{
    if (a.size() != b.size())
        return false;
    for (qsizetype i = 0; i < a.size(); ++i) {
        if (a[i].number != b[i].number || a[i].timeMs != b[i].timeMs || a[i].seq != b[i].seq
            || a[i].stream != b[i].stream || a[i].text != b[i].text) {
            return false;
        }
    }
    return true;
}

void check(const QByteArray &data, qint64 firstLine)
{
    LogLines lines;
    LogLine sentinel;
    sentinel.text = QStringLiteral("kept");
    lines.append(sentinel);
    const bool ok = LogChunk::decode(data, firstLine, &lines);
    if (!ok) {
        FUZZ_CHECK(lines.size() == 1); // nothing appended on failure
        return;
    }
    lines.removeFirst();
    for (qsizetype i = 1; i < lines.size(); ++i)
        FUZZ_CHECK(lines[i].number >= lines[i - 1].number);
    if (lines.isEmpty())
        return;

    // Re-encoded, the lines come back unchanged.
    const QByteArray again = LogChunk::encode(lines);
    LogLines decoded;
    FUZZ_CHECK(LogChunk::decode(again, lines.constFirst().number, &decoded));
    FUZZ_CHECK(sameLines(lines, decoded));

    // From a later line: the lines numbered that or later, in the same order.
    const qint64 from = lines[lines.size() / 2].number;
    LogLines tail;
    FUZZ_CHECK(LogChunk::decode(data, firstLine, &tail, from));
    qsizetype start = 0;
    while (start < lines.size() && lines[start].number < from)
        ++start;
    FUZZ_CHECK(sameLines(lines.mid(start), tail));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::quietQtMessages();
    const QByteArray chunk = fuzz::bytes(data, size);
    check(chunk, 1);
    // A first_line near the top of the range, as a damaged row could hold.
    check(chunk, std::numeric_limits<qint64>::max() - 2);
    check(chunk, std::numeric_limits<qint64>::min());
    return 0;
}
