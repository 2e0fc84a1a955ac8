// SPDX-License-Identifier: MIT
#pragma once

#include "field.h"

#include <QByteArray>
#include <QJsonObject>
#include <QString>

namespace taskdeck {

struct StartError;

/*!
 * An error the admin API answers with. The kind decides the HTTP status and the "error" code
 * in exactly one place (status(), code()); handlers throw it or hand it to the reply.
 * The message is for people and never carries a stack trace or an internal path.
 */
struct ApiError
{
    enum class Kind { BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict,
                      PayloadTooLarge, UnsupportedMediaType, UpgradeRequired, TooManyRequests,
                      Unavailable, Internal };

    Kind kind = Kind::Internal;
    QString message;
    FieldErrors fields;
    QByteArray allow; //!< MethodNotAllowed: the Allow header

    int status() const;
    QString code() const;
    /*! {error, message, fields?} */
    QJsonObject toJson() const;

    /*! The engine's refusal to start a run, as the API reports it. */
    static ApiError fromStartError(const StartError &error);
};

} // namespace taskdeck
