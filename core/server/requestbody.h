// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QList>
#include <QString>

namespace taskdeck {

/*!
 * The arguments a start or rerun request carries in its body: a JSON object
 * (application/json) or a form (application/x-www-form-urlencoded), chosen by
 * \a contentType (the header's value; parameters such as charset are ignored). An empty or
 * all-blank body is no arguments. Throws ApiError: BadRequest for malformed JSON, a body that
 * is not an object, or a form that is not valid UTF-8; UnsupportedMediaType for any other
 * type. Pure function; safe from any thread.
 */
QJsonObject decodeArgumentsBody(const QByteArray &contentType, const QByteArray &body);

/*!
 * A urlencoded form (name=value&...; '+' is a space) as strings, which the fields coerce; a
 * repeated name becomes an array of its values in order. Throws ApiError (BadRequest) when a
 * decoded name or value is not valid UTF-8.
 */
QJsonObject decodeFormArguments(const QByteArray &body);

/*! Adds \a value under \a name to a form's arguments; a repeated name becomes a list. */
void addFormValue(QJsonObject &args, const QString &name, const QJsonValue &value);

/*! One part of a multipart/form-data body. */
struct FormPart
{
    QString name;      //!< the form field's name
    QString fileName;  //!< the file's name as the browser gave it; empty for a plain value
    bool isFile = false; //!< the part has a filename parameter (a file input)
    QByteArray data;   //!< the value's bytes (a file's content)
};

/*!
 * The parts of a multipart/form-data body (RFC 7578), the boundary taken from
 * \a contentType. Throws ApiError (BadRequest) naming what is wrong: no boundary, a
 * missing closing delimiter, a part without a name, a name or a plain value that is not
 * valid UTF-8.
 */
QList<FormPart> decodeMultipart(const QByteArray &contentType, const QByteArray &body);

} // namespace taskdeck
