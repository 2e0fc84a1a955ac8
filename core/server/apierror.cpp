// SPDX-License-Identifier: MIT
#include "apierror.h"

#include "taskengine.h"

#include <QJsonArray>

using namespace Qt::StringLiterals;

namespace taskdeck {

int ApiError::status() const
{
    switch (kind) {
    case Kind::BadRequest: return 400;
    case Kind::Unauthorized: return 401;
    case Kind::Forbidden: return 403;
    case Kind::NotFound: return 404;
    case Kind::MethodNotAllowed: return 405;
    case Kind::Conflict: return 409;
    case Kind::PayloadTooLarge: return 413;
    case Kind::UnsupportedMediaType: return 415;
    case Kind::UpgradeRequired: return 426;
    case Kind::TooManyRequests: return 429;
    case Kind::Unavailable: return 503;
    case Kind::Internal: break;
    }
    return 500;
}

QString ApiError::code() const
{
    switch (kind) {
    case Kind::BadRequest: return fields.isEmpty() ? u"bad_request"_s : u"invalid_arguments"_s;
    case Kind::Unauthorized: return u"unauthorized"_s;
    case Kind::Forbidden: return u"forbidden"_s;
    case Kind::NotFound: return u"not_found"_s;
    case Kind::MethodNotAllowed: return u"method_not_allowed"_s;
    case Kind::Conflict: return u"conflict"_s;
    case Kind::PayloadTooLarge: return u"payload_too_large"_s;
    case Kind::UnsupportedMediaType: return u"unsupported_media_type"_s;
    case Kind::UpgradeRequired: return u"upgrade_required"_s;
    case Kind::TooManyRequests: return u"too_many_requests"_s;
    case Kind::Unavailable: return u"unavailable"_s;
    case Kind::Internal: break;
    }
    return u"internal"_s;
}

QJsonObject ApiError::toJson() const
{
    QJsonObject o{{u"error"_s, code()}, {u"message"_s, message}};
    if (!fields.isEmpty()) {
        QJsonArray list;
        for (const FieldError &f : fields)
            list.append(QJsonObject{{u"field"_s, f.field}, {u"message"_s, f.message}});
        o.insert(u"fields"_s, list);
    }
    return o;
}

ApiError ApiError::fromStartError(const StartError &error)
{
    switch (error.code) {
    case StartError::Code::UnknownTask:
        return {Kind::NotFound, error.message, {}, {}};
    case StartError::Code::InvalidArguments:
        return {Kind::BadRequest, error.message, error.fields, {}};
    case StartError::Code::ConfirmationRequired:
        return {Kind::Conflict, error.message
                    + u"; send \"confirm\" equal to the task's key beside the arguments"_s, {}, {}};
    case StartError::Code::ShuttingDown:
        return {Kind::Unavailable, error.message, {}, {}};
    case StartError::Code::None:
        break;
    }
    return {Kind::Internal, u"the run could not be started"_s, {}, {}};
}

} // namespace taskdeck
