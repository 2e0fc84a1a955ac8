// SPDX-License-Identifier: MIT
// Argument validation and coercion (core/engine/field.*). The input is one JSON object:
//   {"fields": [{"key", "type", "required", "default", "min", "max", "pattern",
//                "choices": [[value, label], ...]}, ...],
//    "args": {...}}
// The field list is decoded from it as a tasks file or a built-in task could declare it, and
// the arguments are validated against it. Properties: valid arguments validate again to the
// same values (coercion is idempotent); only declared fields come out; JSON Schema length
// bounds are not negative; no error message repeats a Secret's value; redactSecrets() and maskSecrets() leave no secret behind.
#include "fuzzsupport.h"

#include "field.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>

using namespace taskdeck;
using namespace Qt::StringLiterals;

namespace {

Fields decodeFields(const QJsonArray &array)
{
    Fields fields;
    for (const QJsonValue &v : array) {
        const QJsonObject o = v.toObject();
        // A field list has one field per key (tasks files refuse repeated keys).
        const QString key = o.value(u"key"_s).toString();
        if (std::any_of(fields.cbegin(), fields.cend(), [&](const Field &f) { return f.key == key; }))
            continue;
        Field f(o.value(u"key"_s).toString(),
                fieldTypeFromName(o.value(u"type"_s).toString()).value_or(FieldType::Text));
        f.required = o.value(u"required"_s).toBool();
        f.defaultValue = o.value(u"default"_s);
        if (o.value(u"min"_s).isDouble())
            f.min = o.value(u"min"_s).toDouble();
        if (o.value(u"max"_s).isDouble())
            f.max = o.value(u"max"_s).toDouble();
        f.pattern = o.value(u"pattern"_s).toString();
        for (const QJsonValue &choice : o.value(u"choices"_s).toArray()) {
            const QJsonArray pair = choice.toArray();
            f.choices.append({pair.at(0).toString(), pair.at(1).toString()});
        }
        fields.append(f);
        if (fields.size() >= 32)
            break;
    }
    return fields;
}

// A secret value a message could not contain by chance: it carries a control character.
bool distinctive(const QString &value)
{
    return value.size() >= kMinMaskedSecretLength && value.contains(QChar(1));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::quietQtMessages();
    if (size > 16 * 1024)
        return 0;
    const QJsonDocument document = QJsonDocument::fromJson(fuzz::bytes(data, size));
    if (!document.isObject())
        return 0;
    const QJsonObject input = document.object();
    const Fields fields = decodeFields(input.value(u"fields"_s).toArray());
    const QJsonObject raw = input.value(u"args"_s).toObject();

    const Validation v = validateArguments(fields, raw);
    fieldsToJsonSchema(fields);
    for (const Field &f : fields) {
        f.toJson();
        // Length bounds are whole numbers of characters, never negative (a bound past qint64
        // once converted to one).
        const QJsonObject schema = f.toJsonSchema();
        for (const QString &bound : {u"minLength"_s, u"maxLength"_s}) {
            if (schema.contains(bound))
                FUZZ_CHECK(schema.value(bound).toInteger(-1) >= 0);
        }
        QString error;
        f.coerce(raw.value(f.key), &error);
    }
    formatFieldErrors(v.errors);

    QStringList secrets;
    for (const Field &f : fields) {
        if (f.type == FieldType::Secret && raw.value(f.key).isString())
            secrets.append(raw.value(f.key).toString());
    }
    for (const QString &secret : std::as_const(secrets)) {
        if (!distinctive(secret))
            continue;
        for (const FieldError &e : v.errors)
            FUZZ_CHECK(!e.message.contains(secret));
    }

    if (!v.ok())
        return 0;
    for (auto it = v.values.constBegin(); it != v.values.constEnd(); ++it) {
        bool declared = false;
        for (const Field &f : fields)
            declared = declared || f.key == it.key();
        FUZZ_CHECK(declared);
    }
    const Validation again = validateArguments(fields, v.values);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again.values == v.values);

    const QJsonObject redacted = redactSecrets(fields, v.values);
    for (const Field &f : fields) {
        if (f.type != FieldType::Secret)
            continue;
        const QString value = v.values.value(f.key).toString();
        if (distinctive(value))
            FUZZ_CHECK(redacted.value(f.key).toString() != value);
    }
    const QStringList masked = secretValues(fields, v.values);
    for (const QString &secret : masked) {
        if (secret.contains(u'*'))
            continue;
        const QString text = maskSecrets(masked, u"before "_s + secret + u" between "_s + secret);
        FUZZ_CHECK(!text.contains(secret));
    }
    return 0;
}
