// SPDX-License-Identifier: MIT
#include "requestbody.h"

#include "apierror.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QStringDecoder>

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

} // namespace

QJsonObject decodeFormArguments(const QByteArray &body)
{
    QJsonObject args;
    const QList<QByteArray> pairs = body.trimmed().split('&');
    for (const QByteArray &pair : pairs) {
        if (pair.isEmpty())
            continue;
        const qsizetype eq = pair.indexOf('=');
        const QString name = decodeFormPart(eq < 0 ? pair : pair.left(eq));
        const QString value = eq < 0 ? QString() : decodeFormPart(pair.mid(eq + 1));
        const QJsonValue previous = args.value(name);
        if (previous.isUndefined()) {
            args.insert(name, value);
        } else {
            QJsonArray values = previous.isArray() ? previous.toArray() : QJsonArray{previous};
            values.append(value);
            args.insert(name, values);
        }
    }
    return args;
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
             u"send the arguments as application/json or application/x-www-form-urlencoded"_s);
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
