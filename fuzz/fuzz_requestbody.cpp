// SPDX-License-Identifier: MIT
// The part of the admin server's request path that Taskdeck's own code parses (core/server):
// the arguments body of a start or rerun (JSON or a urlencoded form, chosen by the
// Content-Type) and the request target test of the request guard. The input's first line is
// the Content-Type header's value (and the request target), the rest is the body. QHttpServer
// parses the request head itself; that is Qt's code and not fuzzed here.
// Properties: a refused body is refused as 400 or 415 with a message; a decoded form encoded
// again decodes to the same arguments.
#include "fuzzsupport.h"

#include "apierror.h"
#include "field.h"
#include "requestbody.h"
#include "requestguard.h"

#include <QJsonArray>
#include <QJsonObject>

using namespace taskdeck;
using namespace Qt::StringLiterals;

namespace {

QByteArray encodeForm(const QJsonObject &args)
{
    QByteArray out;
    for (auto it = args.constBegin(); it != args.constEnd(); ++it) {
        const QJsonArray values = it.value().isArray() ? it.value().toArray() : QJsonArray{it.value()};
        for (const QJsonValue &v : values) {
            if (!out.isEmpty())
                out += '&';
            out += it.key().toUtf8().toPercentEncoding() + '=' + v.toString().toUtf8().toPercentEncoding();
        }
    }
    return out;
}

const Fields &startFields()
{
    static const Fields fields = {
        Field(u"count"_s, FieldType::Integer).withMin(0).withMax(100),
        Field(u"name"_s, FieldType::Text).withRequired().withPattern(u"[a-z]+"_s),
        Field(u"format"_s, FieldType::Select).withChoices({{u"sql"_s, u"SQL"_s}, {u"tar"_s, u"Tar"_s}}),
        Field(u"tags"_s, FieldType::MultiSelect).withChoices({{u"a"_s, u"A"_s}, {u"b"_s, u"B"_s}}),
        Field(u"dry"_s, FieldType::Bool),
        Field(u"token"_s, FieldType::Secret),
    };
    return fields;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::quietQtMessages();
    if (size > 64 * 1024)
        return 0;
    const QByteArray input = fuzz::bytes(data, size);
    const qsizetype newline = input.indexOf('\n');
    const QByteArray contentType = newline < 0 ? input : input.left(newline);
    const QByteArray body = newline < 0 ? QByteArray() : input.mid(newline + 1);

    RequestGuard::isUploadTarget(contentType);
    RequestGuard::carriesFiles(contentType, contentType);

    // Multipart forms: parts or a BadRequest naming what is wrong, nothing else.
    try {
        const QList<FormPart> parts = decodeMultipart(contentType, body);
        for (const FormPart &part : parts)
            FUZZ_CHECK(!part.name.isEmpty() && part.data.size() <= body.size());
    } catch (const ApiError &e) {
        FUZZ_CHECK(e.kind == ApiError::Kind::BadRequest);
        FUZZ_CHECK(!e.message.isEmpty());
    }

    QJsonObject args;
    try {
        args = decodeArgumentsBody(contentType, body);
    } catch (const ApiError &e) {
        FUZZ_CHECK(e.kind == ApiError::Kind::BadRequest || e.kind == ApiError::Kind::UnsupportedMediaType);
        FUZZ_CHECK(!e.message.isEmpty());
        FUZZ_CHECK(e.status() == 400 || e.status() == 415);
        e.toJson();
        return 0;
    }
    validateArguments(startFields(), args);

    QJsonObject form;
    try {
        form = decodeFormArguments(body);
    } catch (const ApiError &e) {
        FUZZ_CHECK(e.kind == ApiError::Kind::BadRequest);
        return 0;
    }
    const QJsonObject again = decodeFormArguments(encodeForm(form));
    FUZZ_CHECK(again == form);
    return 0;
}
