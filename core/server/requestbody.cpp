// SPDX-License-Identifier: MIT
#include "requestbody.h"

#include "apierror.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QStringDecoder>

#include <optional>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

[[noreturn]] void fail(ApiError::Kind kind, const QString &message)
{
    throw ApiError{kind, message, {}, {}};
}

QString decodeFormPart(QByteArray part)
{
    part.replace('+', ' ');
    QStringDecoder decoder(QStringDecoder::Utf8);
    const QString text = decoder(QByteArray::fromPercentEncoding(part));
    if (decoder.hasError())
        fail(ApiError::Kind::BadRequest, u"the form is not valid UTF-8"_s);
    return text;
}

QString utf8(const QByteArray &bytes, const QString &what)
{
    QStringDecoder decoder(QStringDecoder::Utf8);
    const QString text = decoder(bytes);
    if (decoder.hasError())
        fail(ApiError::Kind::BadRequest, what + u" is not valid UTF-8"_s);
    return text;
}

// A parameter of a header value: name="value" or name=value (the quotes' content as is).
std::optional<QByteArray> headerParameter(const QByteArray &value, const QByteArray &name)
{
    const QList<QByteArray> pieces = value.split(';');
    for (qsizetype i = 1; i < pieces.size(); ++i) {
        const QByteArray piece = pieces.at(i).trimmed();
        const qsizetype eq = piece.indexOf('=');
        if (eq < 0 || piece.left(eq).trimmed().toLower() != name)
            continue;
        QByteArray v = piece.mid(eq + 1).trimmed();
        if (v.size() >= 2 && v.startsWith('"') && v.endsWith('"'))
            v = v.mid(1, v.size() - 2);
        return v;
    }
    return std::nullopt;
}

} // namespace

QList<FormPart> decodeMultipart(const QByteArray &contentType, const QByteArray &body)
{
    const std::optional<QByteArray> boundary = headerParameter(contentType, "boundary");
    if (!boundary || boundary->isEmpty() || boundary->size() > 200)
        fail(ApiError::Kind::BadRequest, u"multipart/form-data needs a boundary parameter of 1 to 200 characters"_s);
    const QByteArray delimiter = "--" + *boundary;
    qsizetype at = body.indexOf(delimiter);
    if (at < 0)
        fail(ApiError::Kind::BadRequest, u"the form has no part: its boundary never appears"_s);
    QList<FormPart> parts;
    for (;;) {
        at += delimiter.size();
        if (body.mid(at, 2) == "--")
            return parts; // the closing delimiter
        if (body.mid(at, 2) != "\r\n")
            fail(ApiError::Kind::BadRequest, u"malformed multipart body: a boundary line does not end with CRLF"_s);
        at += 2;
        const qsizetype headEnd = body.indexOf("\r\n\r\n", at);
        const qsizetype next = body.indexOf(QByteArray("\r\n" + delimiter), at);
        if (next < 0)
            fail(ApiError::Kind::BadRequest, u"malformed multipart body: the closing boundary is missing"_s);
        if (headEnd < 0 || headEnd > next)
            fail(ApiError::Kind::BadRequest, u"malformed multipart body: a part has no header"_s);
        FormPart part;
        bool named = false;
        const QList<QByteArray> lines = body.mid(at, headEnd - at).split('\n');
        for (const QByteArray &raw : lines) {
            const QByteArray line = raw.trimmed();
            const qsizetype colon = line.indexOf(':');
            if (colon <= 0 || line.left(colon).trimmed().toLower() != "content-disposition")
                continue;
            const QByteArray value = line.mid(colon + 1).trimmed();
            if (const auto name = headerParameter(value, "name")) {
                part.name = utf8(*name, u"a form field's name"_s);
                named = !part.name.isEmpty();
            }
            if (const auto file = headerParameter(value, "filename")) {
                part.isFile = true;
                part.fileName = QString::fromUtf8(*file);
            }
        }
        if (!named)
            fail(ApiError::Kind::BadRequest, u"malformed multipart body: a part has no name in its Content-Disposition"_s);
        part.data = body.mid(headEnd + 4, next - headEnd - 4);
        if (!part.isFile)
            utf8(part.data, u"the value of "_s + part.name);
        parts.append(std::move(part));
        at = next + 2;
    }
}

QJsonObject decodeFormArguments(const QByteArray &body)
{
    QJsonObject args;
    const QList<QByteArray> pairs = body.trimmed().split('&');
    for (const QByteArray &pair : pairs) {
        if (pair.isEmpty())
            continue;
        const qsizetype eq = pair.indexOf('=');
        const QString name = decodeFormPart(eq < 0 ? pair : pair.left(eq));
        addFormValue(args, name, eq < 0 ? QString() : decodeFormPart(pair.mid(eq + 1)));
    }
    return args;
}

void addFormValue(QJsonObject &args, const QString &name, const QJsonValue &value)
{
    const QJsonValue previous = args.value(name);
    if (previous.isUndefined()) {
        args.insert(name, value);
        return;
    }
    QJsonArray values = previous.isArray() ? previous.toArray() : QJsonArray{previous};
    values.append(value);
    args.insert(name, values);
}

QJsonObject decodeArgumentsBody(const QByteArray &contentType, const QByteArray &body)
{
    if (body.trimmed().isEmpty())
        return {};
    const QByteArray type = contentType.split(';').constFirst().trimmed().toLower();
    if (type == "application/x-www-form-urlencoded")
        return decodeFormArguments(body);
    if (type != "application/json")
        fail(ApiError::Kind::UnsupportedMediaType,
             u"send the arguments as application/json, application/x-www-form-urlencoded or multipart/form-data"_s);
    // Qt's JSON parser lets some invalid UTF-8 through (replaced): refuse it first.
    QStringDecoder decoder(QStringDecoder::Utf8);
    [[maybe_unused]] const QString text = decoder(body);
    if (decoder.hasError())
        fail(ApiError::Kind::BadRequest, u"the body is not valid UTF-8"_s);
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(body, &error);
    if (error.error != QJsonParseError::NoError)
        fail(ApiError::Kind::BadRequest, u"malformed JSON at offset %1: %2"_s.arg(error.offset).arg(error.errorString()));
    if (!document.isObject())
        fail(ApiError::Kind::BadRequest, u"the body must be a JSON object of arguments"_s);
    return document.object();
}

} // namespace taskdeck
