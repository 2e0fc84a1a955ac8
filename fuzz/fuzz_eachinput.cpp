// SPDX-License-Identifier: MIT
// The input of run --each (app/eachinput.*): the bytes become a regular file (a memfd named
// through /proc/self/fd, read as taskdeck reads a file given to --each), are split into lines
// by EachInput, and every line is decoded as run --each decodes it (trimmed, empty lines
// skipped, a JSON object of arguments validated against a field list). Properties: the lines
// joined with '\n' give back the input; the count of lines with content matches
// countNonEmptyLines(), which sizes the progress display.
#include "fuzzsupport.h"

#include "eachinput.h"
#include "field.h"

#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>

#include <sys/mman.h>
#include <unistd.h>

using namespace taskdeck;
using namespace Qt::StringLiterals;

namespace {

const Fields &lineFields()
{
    static const Fields fields = {
        Field(u"n"_s, FieldType::Integer).withMin(-5).withMax(1e12),
        Field(u"name"_s, FieldType::Text).withRequired(),
        Field(u"tags"_s, FieldType::MultiSelect).withChoices({{u"a"_s, u"A"_s}, {u"b"_s, u"B"_s}}),
        Field(u"when"_s, FieldType::DateTime),
    };
    return fields;
}

bool isSpace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::quietQtMessages();
    const int fd = memfd_create("each", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    std::size_t written = 0;
    while (written < size) {
        const ssize_t n = ::write(fd, data + written, size - written);
        FUZZ_CHECK(n > 0);
        written += std::size_t(n);
    }

    {
        EachInput input;
        FUZZ_CHECK(input.open(u"/proc/self/fd/%1"_s.arg(fd)));
        FUZZ_CHECK(!input.isStream());
        QByteArray joined;
        qint64 withContent = 0;
        QByteArray line;
        EachInput::Next next;
        int lines = 0;
        while ((next = input.next(&line)) == EachInput::Next::Line) {
            ++lines;
            FUZZ_CHECK(input.lineNumber() == lines);
            FUZZ_CHECK(!line.contains('\n'));
            joined += line + '\n';
            if (std::any_of(line.cbegin(), line.cend(), [](char c) { return !isSpace(c); }))
                ++withContent;
            const QByteArray text = line.trimmed();
            if (text.isEmpty())
                continue;
            const QJsonDocument document = QJsonDocument::fromJson(text);
            if (document.isObject())
                validateArguments(lineFields(), document.object());
        }
        FUZZ_CHECK(next == EachInput::Next::End);
        FUZZ_CHECK(input.atEnd());
        const QByteArray original = fuzz::bytes(data, size);
        FUZZ_CHECK(joined == original || joined == original + '\n');
        FUZZ_CHECK(input.countNonEmptyLines() == withContent);
    }
    ::close(fd);
    return 0;
}
