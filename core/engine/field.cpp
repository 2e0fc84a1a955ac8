// SPDX-License-Identifier: MIT
#include "field.h"

#include <QDate>
#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLocale>
#include <QRegularExpression>
#include <QSet>
#include <QStringList>
#include <QTime>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <utility>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

// Given values longer than this are cut in messages so one bad paste cannot flood a report.
constexpr qsizetype MaxQuotedCodePoints = 60;

// 2^63 as a double: the first value past qint64's range (qint64 max itself is not a double).
constexpr double Int64Bound = 9223372036854775808.0;

// Whether the whole number \a v lies below \a bound, compared exactly: converting \a v to
// a double would round it beyond 2^53 and let a value just past a bound through.
bool integerBelow(qint64 v, double bound)
{
    if (std::isnan(bound))
        return false;
    if (bound >= Int64Bound)
        return true;
    if (bound <= -Int64Bound)
        return false;
    return v < static_cast<qint64>(std::ceil(bound));
}

bool integerAbove(qint64 v, double bound)
{
    if (std::isnan(bound))
        return false;
    if (bound >= Int64Bound)
        return false;
    if (bound < -Int64Bound)
        return true;
    return v > static_cast<qint64>(std::floor(bound));
}

// A length bound as a JSON Schema integer, 0 or more: a double at or past 2^63 (or NaN) has
// no qint64 to convert to.
qint64 lengthBound(double v)
{
    if (!(v > 0))
        return 0;
    if (v >= Int64Bound)
        return std::numeric_limits<qint64>::max();
    return static_cast<qint64>(v);
}

const QString &redactedText()
{
    static const QString text = u"********"_s;
    return text;
}

constexpr FieldType AllTypes[] = {
    FieldType::Text,     FieldType::Textarea,    FieldType::Integer, FieldType::Number,
    FieldType::Bool,     FieldType::Select,      FieldType::MultiSelect,
    FieldType::File,     FieldType::Secret,      FieldType::DateTime,
};

bool hasValue(const QJsonValue &v)
{
    return !v.isUndefined() && !v.isNull();
}

// Forms post "" for an untouched input, so an empty string means "not given" like absence.
bool isMissing(const QJsonValue &v)
{
    return !hasValue(v) || (v.isString() && v.toString().isEmpty());
}

std::optional<QJsonValue> fail(QString *error, const QString &message)
{
    if (error)
        *error = message;
    return std::nullopt;
}

// JSON Schema and people count characters, not UTF-16 units: an emoji is one character.
qsizetype codePointCount(QStringView s)
{
    qsizetype count = 0;
    for (qsizetype i = 0; i < s.size(); ++i) {
        if (s[i].isHighSurrogate() && i + 1 < s.size() && s[i + 1].isLowSurrogate())
            ++i;
        ++count;
    }
    return count;
}

QString formatNumber(double v)
{
    if (std::isfinite(v) && std::trunc(v) == v && std::abs(v) < 1e15)
        return QString::number(static_cast<qint64>(v));
    return QString::number(v, 'g', QLocale::FloatingPointShortest);
}

QString numberText(const QJsonValue &v)
{
    if (const std::optional<qint64> i = exactInteger(v))
        return QString::number(*i);
    return QString::number(v.toDouble(), 'g', QLocale::FloatingPointShortest);
}

// Quotes a given value for a one-line message: escapes what would break the line or the
// quotes, and cuts very long values with an ellipsis.
QString quoted(const QString &s)
{
    QString out;
    out.reserve(std::min(s.size(), MaxQuotedCodePoints * 2) + 3);
    out += u'"';
    qsizetype taken = 0;
    for (qsizetype i = 0; i < s.size(); ++i) {
        if (taken == MaxQuotedCodePoints) {
            out += QChar(0x2026);
            break;
        }
        const QChar c = s[i];
        if (c == u'"' || c == u'\\') {
            out += u'\\';
            out += c;
        } else if (c == u'\n') {
            out += u"\\n";
        } else if (c == u'\r') {
            out += u"\\r";
        } else if (c == u'\t') {
            out += u"\\t";
        } else if (c.unicode() < 0x20 || c.unicode() == 0x7f) {
            out += u"\\u"_s + QString::number(c.unicode(), 16).rightJustified(4, u'0');
        } else if (c.isHighSurrogate() && i + 1 < s.size() && s[i + 1].isLowSurrogate()) {
            out += c;
            out += s[++i];
        } else {
            out += c;
        }
        ++taken;
    }
    out += u'"';
    return out;
}

QString plural(qsizetype n, QLatin1StringView one, QLatin1StringView many)
{
    return QString::number(n) + u' ' + (n == 1 ? one : many);
}

// Describes a given value without ever repeating a secret: only its length is named.
QString describeGiven(const QJsonValue &v, bool secret)
{
    switch (v.type()) {
    case QJsonValue::Undefined:
        return u"nothing"_s;
    case QJsonValue::Null:
        return u"null"_s;
    case QJsonValue::Array:
        return u"an array"_s;
    case QJsonValue::Object:
        return u"an object"_s;
    case QJsonValue::Bool:
        if (secret)
            return u"a hidden value"_s;
        return v.toBool() ? u"true"_s : u"false"_s;
    case QJsonValue::Double:
        if (secret)
            return u"a hidden value"_s;
        return numberText(v);
    case QJsonValue::String:
        if (secret)
            return plural(codePointCount(v.toString()), "hidden character"_L1,
                          "hidden characters"_L1);
        return quoted(v.toString());
    }
    return QString();
}

QString got(const QJsonValue &v, bool secret = false)
{
    return u" (got "_s + describeGiven(v, secret) + u')';
}

// The raw value as text for types that accept text: numbers and bools arrive typed from
// JSON bodies but mean the same as their spelling on a command line.
std::optional<QString> scalarText(const QJsonValue &v)
{
    switch (v.type()) {
    case QJsonValue::String:
        return v.toString();
    case QJsonValue::Double:
        return numberText(v);
    case QJsonValue::Bool:
        return v.toBool() ? u"true"_s : u"false"_s;
    case QJsonValue::Undefined:
    case QJsonValue::Null:
    case QJsonValue::Array:
    case QJsonValue::Object:
        break;
    }
    return std::nullopt;
}

// A command's arguments and environment end at the first NUL, so the rest would be dropped.
QString nulRefused()
{
    return u"contains a NUL character (U+0000), which cannot be passed to a command"_s;
}

QString rangeText(const Field &f)
{
    if (f.min && f.max)
        return u" from "_s + formatNumber(*f.min) + u" to "_s + formatNumber(*f.max);
    if (f.min)
        return u" of at least "_s + formatNumber(*f.min);
    if (f.max)
        return u" of at most "_s + formatNumber(*f.max);
    return QString();
}

QString choiceValues(const Field &f)
{
    QStringList values;
    values.reserve(f.choices.size());
    for (const auto &choice : f.choices)
        values << choice.first;
    return values.join(u", ");
}

QString choiceLabel(const QPair<QString, QString> &choice)
{
    return choice.second.isEmpty() ? choice.first : choice.second;
}

QString characters(double n)
{
    return formatNumber(n) + (n == 1 ? u" character"_s : u" characters"_s);
}

QString lengthText(const Field &f)
{
    if (f.min && f.max)
        return formatNumber(*f.min) + u" to "_s + characters(*f.max);
    if (f.min)
        return u"at least "_s + characters(*f.min);
    return u"at most "_s + characters(f.max.value_or(0));
}

constexpr auto BoolAccepted = "true or false (also yes/no, on/off, 1/0)"_L1;
constexpr auto DateTimeAccepted =
    "an ISO 8601 date-time such as 2026-11-26T10:00:00Z, 2026-11-26 10:00 or 2026-11-26"_L1;
constexpr auto FileAccepted = "a path to a readable file"_L1;

// What a field accepts, in words, for "is required" messages.
QString acceptedText(const Field &f)
{
    switch (f.type) {
    case FieldType::Text:
    case FieldType::Textarea:
    case FieldType::Secret:
        return u"text"_s;
    case FieldType::Integer:
        return u"a whole number"_s + rangeText(f);
    case FieldType::Number:
        return u"a number"_s + rangeText(f);
    case FieldType::Bool:
        return u"true or false"_s;
    case FieldType::Select:
        return u"one of: "_s + choiceValues(f);
    case FieldType::MultiSelect:
        return u"any of: "_s + choiceValues(f);
    case FieldType::File:
        return FileAccepted.toString();
    case FieldType::DateTime:
        return u"an ISO 8601 date-time"_s;
    }
    return QString();
}

std::optional<QJsonValue> coerceText(const Field &f, const QJsonValue &raw, QString *error)
{
    const bool secret = f.type == FieldType::Secret;
    const std::optional<QString> text = scalarText(raw);
    if (!text)
        return fail(error, u"expected text"_s + got(raw, secret));
    if (text->contains(QChar::Null))
        return fail(error, nulRefused());
    if (raw.isDouble() && !exactInteger(raw)) {
        // A JSON number arrives as a double: beyond 64-bit integers or 15 significant digits
        // its spelling may already have changed, so refuse rather than pass on another text.
        const double v = raw.toDouble();
        const QString digits = QString::number(v, 'e', QLocale::FloatingPointShortest)
                                       .section(u'e', 0, 0)
                                       .remove(u'-')
                                       .remove(u'.');
        if (!std::isfinite(v) || std::trunc(v) == v || digits.size() > 15) {
            return fail(error, u"expected text: a JSON number this long may not keep its digits; "
                               u"give it as a JSON string"_s + got(raw, secret));
        }
    }

    // A broken pattern is the task author's bug: report it whatever was typed, and check
    // it as written so the reason refers to the author's text, not the anchored wrapper.
    std::optional<QRegularExpression> re;
    if (!f.pattern.isEmpty()) {
        const QRegularExpression asWritten(f.pattern);
        if (!asWritten.isValid()) {
            return fail(error, u"the task's pattern "_s + quoted(f.pattern)
                                   + u" is not a valid regular expression ("_s
                                   + asWritten.errorString() + u')');
        }
        re.emplace(QRegularExpression::anchoredPattern(f.pattern));
    }

    const qsizetype length = codePointCount(*text);
    if ((f.min && static_cast<double>(length) < *f.min)
        || (f.max && static_cast<double>(length) > *f.max)) {
        QString given = plural(length, "character"_L1, "characters"_L1);
        if (!secret)
            given += u": "_s + quoted(*text);
        return fail(error, u"expected "_s + lengthText(f) + u" (got "_s + given + u')');
    }

    if (re && !re->match(*text).hasMatch()) {
        return fail(error, u"expected text matching the pattern "_s + f.pattern
                               + got(QJsonValue(*text), secret));
    }
    return QJsonValue(*text);
}

std::optional<QJsonValue> coerceInteger(const Field &f, const QJsonValue &raw, QString *error)
{
    qint64 value = 0;
    bool overflow = false;
    bool ok = false;
    if (raw.isDouble()) {
        if (const std::optional<qint64> exact = exactInteger(raw)) {
            value = *exact;
            ok = true;
        } else {
            const double d = raw.toDouble();
            overflow = std::isfinite(d) && std::trunc(d) == d;
        }
    } else if (raw.isString()) {
        const QString s = raw.toString().trimmed();
        // QString::toLongLong never uses the user's locale and fails on overflow instead
        // of wrapping, which is exactly what a typed argument needs.
        value = s.toLongLong(&ok, 10);
        if (!ok) {
            static const QRegularExpression digits(u"^[+-]?[0-9]+$"_s);
            overflow = digits.match(s).hasMatch();
        }
    }

    if (!ok) {
        QString accepted = u"expected a whole number"_s + rangeText(f);
        if (overflow && !f.min && !f.max) {
            accepted += u" from "_s + QString::number(std::numeric_limits<qint64>::min())
                        + u" to "_s + QString::number(std::numeric_limits<qint64>::max());
        }
        return fail(error, accepted + got(raw));
    }
    if ((f.min && integerBelow(value, *f.min)) || (f.max && integerAbove(value, *f.max)))
        return fail(error, u"expected a whole number"_s + rangeText(f) + got(raw));
    return QJsonValue(value);
}

std::optional<QJsonValue> coerceNumber(const Field &f, const QJsonValue &raw, QString *error)
{
    double value = 0;
    bool ok = false;
    if (raw.isDouble()) {
        value = raw.toDouble();
        ok = true;
    } else if (raw.isString()) {
        // Arguments are written for machines too: "1,5" must not become 1.5 (or 15) just
        // because the server runs in a German or English locale.
        QLocale c = QLocale::c();
        c.setNumberOptions(QLocale::RejectGroupSeparator);
        value = c.toDouble(raw.toString().trimmed(), &ok);
    }
    if (!ok || !std::isfinite(value))
        return fail(error, u"expected a number"_s + rangeText(f) + got(raw));
    if ((f.min && value < *f.min) || (f.max && value > *f.max))
        return fail(error, u"expected a number"_s + rangeText(f) + got(raw));
    return QJsonValue(value);
}

std::optional<QJsonValue> coerceBool(const QJsonValue &raw, QString *error)
{
    if (raw.isBool())
        return raw;
    if (raw.isDouble()) {
        if (raw.toDouble() == 1)
            return QJsonValue(true);
        if (raw.toDouble() == 0)
            return QJsonValue(false);
    } else if (raw.isString()) {
        const QString s = raw.toString().trimmed().toLower();
        if (s == u"true" || s == u"1" || s == u"yes" || s == u"on")
            return QJsonValue(true);
        if (s == u"false" || s == u"0" || s == u"no" || s == u"off")
            return QJsonValue(false);
    }
    return fail(error, u"expected "_s + BoolAccepted + got(raw));
}

// The choice value \a text names: exact match first, so a value with surrounding spaces
// stays reachable, then tolerant of the spaces a "a, b" list or a shell leaves around it.
std::optional<QString> matchChoice(const Field &f, const QString &text)
{
    for (const auto &choice : f.choices) {
        if (choice.first == text)
            return choice.first;
    }
    const QString trimmed = text.trimmed();
    for (const auto &choice : f.choices) {
        if (choice.first == trimmed)
            return choice.first;
    }
    return std::nullopt;
}

std::optional<QJsonValue> coerceSelect(const Field &f, const QJsonValue &raw, QString *error)
{
    if (f.choices.isEmpty())
        return fail(error, u"the task lists no choices for this field"_s + got(raw));
    if (const std::optional<QString> text = scalarText(raw)) {
        if (const std::optional<QString> value = matchChoice(f, *text))
            return QJsonValue(*value);
    }
    return fail(error, u"expected one of: "_s + choiceValues(f) + got(raw));
}

std::optional<QJsonValue> coerceMultiSelect(const Field &f, const QJsonValue &raw,
                                            QString *error)
{
    const QString listHint = u"expected a JSON array or a comma-separated list of: "_s
                             + choiceValues(f);
    QJsonArray items;
    if (raw.isArray()) {
        items = raw.toArray();
    } else if (raw.isString()) {
        const QString s = raw.toString().trimmed();
        if (s.startsWith(u'[')) {
            QJsonParseError parseError;
            const QJsonDocument doc = QJsonDocument::fromJson(s.toUtf8(), &parseError);
            if (parseError.error != QJsonParseError::NoError || !doc.isArray())
                return fail(error, listHint + got(raw));
            items = doc.array();
        } else {
            for (const QString &part : s.split(u',', Qt::SkipEmptyParts)) {
                const QString item = part.trimmed();
                if (!item.isEmpty())
                    items.append(item);
            }
        }
    } else if (raw.isDouble()) {
        items.append(raw);
    } else {
        return fail(error, listHint + got(raw));
    }

    QStringList values;
    QStringList unknown;
    for (const QJsonValue &item : std::as_const(items)) {
        const std::optional<QString> text =
            item.isString() || item.isDouble() ? scalarText(item) : std::nullopt;
        if (!text)
            return fail(error, listHint + u" (got "_s + describeGiven(item, false)
                                   + u" in the list)"_s);
        if (const std::optional<QString> value = matchChoice(f, *text)) {
            if (!values.contains(*value))
                values << *value;
        } else {
            const QString given = quoted(*text);
            if (!unknown.contains(given))
                unknown << given;
        }
    }
    if (!unknown.isEmpty()) {
        return fail(error, u"expected any of: "_s + choiceValues(f) + u" (got "_s
                               + unknown.join(u", ") + u')');
    }
    return QJsonValue(QJsonArray::fromStringList(values));
}

std::optional<QJsonValue> coerceFile(const QJsonValue &raw, QString *error)
{
    const QString accepted = u" (expected "_s + FileAccepted + u')';
    if (!raw.isString() || raw.toString().isEmpty())
        return fail(error, u"expected "_s + FileAccepted + got(raw));
    const QString path = raw.toString();
    if (path.contains(QChar::Null))
        return fail(error, nulRefused());
    const QFileInfo info(path);
    if (!info.exists())
        return fail(error, u"no such file: "_s + quoted(path) + accepted);
    if (!info.isFile())
        return fail(error, u"not a regular file: "_s + quoted(path) + accepted);
    if (!info.isReadable())
        return fail(error, u"not readable: "_s + quoted(path) + accepted);
    return QJsonValue(QDir::cleanPath(info.absoluteFilePath()));
}

std::optional<QJsonValue> coerceDateTime(const QJsonValue &raw, QString *error)
{
    const auto invalid = [&] {
        return fail(error, u"expected "_s + DateTimeAccepted + got(raw));
    };
    if (!raw.isString())
        return invalid();
    QString s = raw.toString().trimmed();

    static const QRegularExpression dateOnly(u"^\\d{4}-\\d{2}-\\d{2}$"_s);
    if (dateOnly.match(s).hasMatch()) {
        const QDate date = QDate::fromString(s, Qt::ISODate);
        if (!date.isValid())
            return invalid();
        return QJsonValue(QDateTime(date, QTime(0, 0), Qt::UTC).toString(Qt::ISODateWithMs));
    }

    // A value without a zone means UTC. Saying so in the text before parsing matters: Qt
    // would read it as local time first, and a local time inside a DST gap does not exist.
    static const QRegularExpression zoneSuffix(u"(?:[Zz]|[+-]\\d{2}(?::?\\d{2})?)$"_s);
    if (!zoneSuffix.match(s).hasMatch())
        s += u'Z';
    const QDateTime parsed = QDateTime::fromString(s, Qt::ISODateWithMs);
    if (!parsed.isValid())
        return invalid();
    return QJsonValue(parsed.toUTC().toString(Qt::ISODateWithMs));
}

} // namespace

qsizetype invalidUtf8Offset(QByteArrayView bytes)
{
    const auto *data = reinterpret_cast<const unsigned char *>(bytes.data());
    const qsizetype size = bytes.size();
    qsizetype i = 0;
    while (i < size) {
        const unsigned char lead = data[i];
        if (lead < 0x80) {
            ++i;
            continue;
        }
        // The range of the byte after the lead, per the Unicode standard's table of
        // well-formed sequences: it rules out overlong forms, surrogates and values past
        // U+10FFFF; the bytes after it are plain continuation bytes.
        int length = 0;
        unsigned char low = 0x80;
        unsigned char high = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) {
            length = 2;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            length = 3;
            if (lead == 0xE0)
                low = 0xA0;
            else if (lead == 0xED)
                high = 0x9F;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            length = 4;
            if (lead == 0xF0)
                low = 0x90;
            else if (lead == 0xF4)
                high = 0x8F;
        } else {
            return i;
        }
        if (i + 1 >= size || data[i + 1] < low || data[i + 1] > high)
            return i;
        for (int k = 2; k < length; ++k) {
            if (i + k >= size || (data[i + k] & 0xC0) != 0x80)
                return i;
        }
        i += length;
    }
    return -1;
}

QString invalidUtf8Text(QByteArrayView bytes)
{
    const qsizetype at = invalidUtf8Offset(bytes);
    if (at < 0)
        return QString();
    const QString hex = QString::number(quint8(bytes[at]), 16).toUpper().rightJustified(2, u'0');
    return u"byte 0x%1 at offset %2"_s.arg(hex).arg(at);
}

QString fieldTypeName(FieldType type)
{
    switch (type) {
    case FieldType::Text:
        return u"text"_s;
    case FieldType::Textarea:
        return u"textarea"_s;
    case FieldType::Integer:
        return u"integer"_s;
    case FieldType::Number:
        return u"number"_s;
    case FieldType::Bool:
        return u"bool"_s;
    case FieldType::Select:
        return u"select"_s;
    case FieldType::MultiSelect:
        return u"multiselect"_s;
    case FieldType::File:
        return u"file"_s;
    case FieldType::Secret:
        return u"secret"_s;
    case FieldType::DateTime:
        return u"datetime"_s;
    }
    return QString();
}

std::optional<FieldType> fieldTypeFromName(const QString &name)
{
    for (const FieldType type : AllTypes) {
        if (name.compare(fieldTypeName(type), Qt::CaseInsensitive) == 0)
            return type;
    }
    return std::nullopt;
}

QStringList fieldTypeNames()
{
    QStringList names;
    names.reserve(std::size(AllTypes));
    for (const FieldType type : AllTypes)
        names << fieldTypeName(type);
    return names;
}

std::optional<qint64> exactInteger(const QJsonValue &v)
{
    if (!v.isDouble())
        return std::nullopt;
    // toInteger() answers its default for anything but a whole number in range: asking
    // with two defaults tells a stored 0 from the fallback.
    if (const qint64 i = v.toInteger(0); i != 0)
        return i;
    if (v.toInteger(1) == 0)
        return qint64(0);
    return std::nullopt;
}

QString formatFieldErrors(const FieldErrors &errors)
{
    QStringList parts;
    parts.reserve(errors.size());
    for (const FieldError &e : errors)
        parts << (e.field.isEmpty() ? e.message : e.field + u": "_s + e.message);
    return parts.join(u"; ");
}

Field::Field(QString fieldKey, FieldType fieldType)
    : key(std::move(fieldKey))
    , type(fieldType)
{
}

QString Field::label() const
{
    return title.isEmpty() ? key : title;
}

std::optional<QJsonValue> Field::coerce(const QJsonValue &raw, QString *error) const
{
    switch (type) {
    case FieldType::Text:
    case FieldType::Textarea:
    case FieldType::Secret:
        return coerceText(*this, raw, error);
    case FieldType::Integer:
        return coerceInteger(*this, raw, error);
    case FieldType::Number:
        return coerceNumber(*this, raw, error);
    case FieldType::Bool:
        return coerceBool(raw, error);
    case FieldType::Select:
        return coerceSelect(*this, raw, error);
    case FieldType::MultiSelect:
        return coerceMultiSelect(*this, raw, error);
    case FieldType::File:
        return coerceFile(raw, error);
    case FieldType::DateTime:
        return coerceDateTime(raw, error);
    }
    return fail(error, u"unsupported field type"_s);
}

QJsonObject Field::toJsonSchema() const
{
    QJsonObject p;
    p.insert(u"title"_s, label());
    if (!description.isEmpty())
        p.insert(u"description"_s, description);
    p.insert(u"x-taskdeck-type"_s, fieldTypeName(type));
    if (!placeholder.isEmpty())
        p.insert(u"x-placeholder"_s, placeholder);

    // "" counts as missing, so a required field with nothing to fall back on needs at least
    // one character (or item) to be accepted.
    const bool needsValue = required && !hasValue(defaultValue);

    QJsonArray values;
    QJsonArray oneOf;
    for (const auto &choice : choices) {
        values.append(choice.first);
        oneOf.append(QJsonObject{{u"const"_s, choice.first}, {u"title"_s, choiceLabel(choice)}});
    }

    switch (type) {
    case FieldType::Text:
    case FieldType::Textarea:
    case FieldType::Secret: {
        p.insert(u"type"_s, u"string"_s);
        double minLength = min ? std::max(0.0, std::ceil(*min)) : 0.0;
        if (needsValue)
            minLength = std::max(minLength, 1.0);
        if (minLength > 0)
            p.insert(u"minLength"_s, lengthBound(minLength));
        if (max)
            p.insert(u"maxLength"_s, lengthBound(std::floor(*max)));
        if (!pattern.isEmpty())
            p.insert(u"pattern"_s, QString(u"^(?:"_s + pattern + u")$"_s));
        if (type == FieldType::Secret) {
            p.insert(u"writeOnly"_s, true);
            p.insert(u"format"_s, u"password"_s);
        }
        break;
    }
    case FieldType::Integer:
    case FieldType::Number:
        p.insert(u"type"_s, type == FieldType::Integer ? u"integer"_s : u"number"_s);
        if (min)
            p.insert(u"minimum"_s, *min);
        if (max)
            p.insert(u"maximum"_s, *max);
        break;
    case FieldType::Bool:
        p.insert(u"type"_s, u"boolean"_s);
        break;
    case FieldType::Select:
        p.insert(u"type"_s, u"string"_s);
        p.insert(u"enum"_s, values);
        p.insert(u"oneOf"_s, oneOf);
        break;
    case FieldType::MultiSelect:
        p.insert(u"type"_s, u"array"_s);
        p.insert(u"items"_s, QJsonObject{{u"type"_s, u"string"_s},
                                         {u"enum"_s, values},
                                         {u"oneOf"_s, oneOf}});
        p.insert(u"uniqueItems"_s, true);
        if (needsValue)
            p.insert(u"minItems"_s, 1);
        break;
    case FieldType::File:
        p.insert(u"type"_s, u"string"_s);
        p.insert(u"format"_s, u"path"_s);
        p.insert(u"minLength"_s, 1);
        break;
    case FieldType::DateTime:
        p.insert(u"type"_s, u"string"_s);
        p.insert(u"format"_s, u"date-time"_s);
        break;
    }

    // A secret's default must not leave the server. A file default is published as written:
    // whether it exists is checked when a run starts, not when a schema is served. Any
    // other default is published in its typed form, and left out if it is invalid (the
    // run reports that) so no client pre-fills a value that cannot pass.
    if (hasValue(defaultValue) && type != FieldType::Secret) {
        if (type == FieldType::File) {
            p.insert(u"default"_s, defaultValue);
        } else if (const std::optional<QJsonValue> typed = coerce(defaultValue, nullptr)) {
            p.insert(u"default"_s, *typed);
        }
    }
    return p;
}

QJsonObject Field::toJson() const
{
    QJsonObject o{
        {u"key"_s, key},
        {u"type"_s, fieldTypeName(type)},
        {u"required"_s, required},
    };
    if (!title.isEmpty())
        o.insert(u"title"_s, title);
    if (!description.isEmpty())
        o.insert(u"description"_s, description);
    if (hasValue(defaultValue)) {
        // Listings reach every viewer of a task: say a secret has a default, never what it is.
        if (type == FieldType::Secret)
            o.insert(u"hasDefault"_s, true);
        else
            o.insert(u"default"_s, defaultValue);
    }
    if (!choices.isEmpty()) {
        QJsonArray list;
        for (const auto &choice : choices)
            list.append(QJsonObject{{u"value"_s, choice.first}, {u"label"_s, choiceLabel(choice)}});
        o.insert(u"choices"_s, list);
    }
    if (min)
        o.insert(u"min"_s, *min);
    if (max)
        o.insert(u"max"_s, *max);
    if (!pattern.isEmpty())
        o.insert(u"pattern"_s, pattern);
    if (!placeholder.isEmpty())
        o.insert(u"placeholder"_s, placeholder);
    return o;
}

Validation validateArguments(const Fields &fields, const QJsonObject &raw)
{
    Validation result;
    QSet<QString> known;
    QStringList acceptedKeys;
    for (const Field &field : fields) {
        known.insert(field.key);
        acceptedKeys << field.key;

        const QJsonValue given = raw.value(field.key);
        if (isMissing(given)) {
            if (hasValue(field.defaultValue)) {
                QString error;
                const std::optional<QJsonValue> value = field.coerce(field.defaultValue, &error);
                if (value)
                    result.values.insert(field.key, *value);
                else
                    result.errors.append({field.key, u"the task's default is invalid: "_s + error});
            } else if (field.required) {
                result.errors.append(
                    {field.key, u"is required (expected "_s + acceptedText(field) + u')'});
            }
            continue;
        }

        QString error;
        const std::optional<QJsonValue> value = field.coerce(given, &error);
        if (!value) {
            result.errors.append({field.key, error});
        } else if (field.required && field.type == FieldType::MultiSelect
                   && value->toArray().isEmpty()) {
            // An explicit empty selection is a choice for an optional field, but it cannot
            // satisfy a required one.
            result.errors.append({field.key, u"is required (choose at least one of: "_s
                                                 + choiceValues(field) + u')'});
        } else {
            result.values.insert(field.key, *value);
        }
    }

    // QJsonObject iterates in key order, which gives unknown arguments a stable order.
    for (auto it = raw.constBegin(); it != raw.constEnd(); ++it) {
        if (known.contains(it.key()))
            continue;
        result.errors.append({it.key(), fields.isEmpty()
                                            ? u"unknown argument (this task takes no arguments)"_s
                                            : u"unknown argument (accepted: "_s
                                                  + acceptedKeys.join(u", ") + u')'});
    }
    return result;
}

QJsonObject fieldsToJsonSchema(const Fields &fields)
{
    QJsonObject properties;
    QJsonArray required;
    for (const Field &field : fields) {
        properties.insert(field.key, field.toJsonSchema());
        // A required field with a default may be left out: validation fills it in.
        if (field.required && !hasValue(field.defaultValue))
            required.append(field.key);
    }
    return QJsonObject{
        {u"$schema"_s, u"https://json-schema.org/draft/2020-12/schema"_s},
        {u"type"_s, u"object"_s},
        {u"properties"_s, properties},
        {u"required"_s, required},
        {u"additionalProperties"_s, false},
    };
}

QStringList secretValues(const Fields &fields, const QJsonObject &args)
{
    QStringList values;
    for (const Field &f : fields) {
        if (f.type != FieldType::Secret)
            continue;
        const QString value = args.value(f.key).toString();
        if (value.size() >= kMinMaskedSecretLength && !values.contains(value))
            values << value;
    }
    std::sort(values.begin(), values.end(),
              [](const QString &a, const QString &b) { return a.size() > b.size(); });
    return values;
}

QString maskSecrets(const QStringList &secrets, QString text)
{
    for (const QString &secret : secrets) {
        if (text.contains(secret))
            text.replace(secret, redactedText());
    }
    return text;
}

QJsonValue maskSecrets(const QStringList &secrets, const QJsonValue &value)
{
    if (secrets.isEmpty())
        return value;
    if (value.isString())
        return maskSecrets(secrets, value.toString());
    if (value.isArray()) {
        QJsonArray masked;
        const QJsonArray array = value.toArray();
        for (const QJsonValue &item : array)
            masked.append(maskSecrets(secrets, item));
        return masked;
    }
    if (value.isObject()) {
        QJsonObject masked;
        const QJsonObject object = value.toObject();
        for (auto it = object.begin(); it != object.end(); ++it)
            masked.insert(maskSecrets(secrets, it.key()), maskSecrets(secrets, it.value()));
        return masked;
    }
    return value;
}

QJsonObject redactSecrets(const Fields &fields, const QJsonObject &args)
{
    QJsonObject copy = args;
    for (const Field &field : fields) {
        if (field.type == FieldType::Secret && hasValue(copy.value(field.key)))
            copy.insert(field.key, redactedText());
    }
    return copy;
}

} // namespace taskdeck
