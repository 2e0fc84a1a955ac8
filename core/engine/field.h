// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArrayView>
#include <QJsonObject>
#include <QJsonValue>
#include <QList>
#include <QPair>
#include <QString>

#include <optional>

namespace taskdeck {

/*!
 * The kind of value a task parameter holds. The names returned by fieldTypeName() are the
 * ones used in tasks files, JSON Schema exports and the web form.
 */
enum class FieldType {
    Text,        //!< one line of text
    Textarea,    //!< multi-line text
    Integer,     //!< whole number (qint64), optional min/max
    Number,      //!< floating point number, optional min/max
    Bool,        //!< true/false
    Select,      //!< one of choices
    MultiSelect, //!< any subset of choices, kept as a JSON array of values
    File,        //!< path to a file on this machine
    Secret,      //!< text that is never shown or stored in clear
    DateTime,    //!< ISO 8601 date-time (a bare date means midnight UTC)
};

/*!
 * Where \a bytes stop being UTF-8: the offset of the first byte that does not belong to a
 * well-formed sequence (an overlong form, a surrogate and a code point above U+10FFFF are not
 * well-formed), or -1 when all of it is UTF-8.
 *
 * Taskdeck's one rule for text it is given (command-line arguments, --each lines, tasks
 * files; the server applies it to request bodies): it must be UTF-8, and text that is not is
 * refused with its place named. It is never replaced with U+FFFD or changed otherwise, so a
 * value either arrives exactly as given or not at all.
 */
qsizetype invalidUtf8Offset(QByteArrayView bytes);

/*! "byte 0xE9 at offset 3" about the first byte of \a bytes that is not UTF-8 (see
 *  invalidUtf8Offset()); empty when all of it is. */
QString invalidUtf8Text(QByteArrayView bytes);

/*! Name of \a type as used in tasks files and JSON ("text", "multiselect", ...). */
QString fieldTypeName(FieldType type);
/*! Parses a type name; nullopt when \a name is not one of the names fieldTypeNames() lists. */
std::optional<FieldType> fieldTypeFromName(const QString &name);
/*! Every accepted type name, in declaration order. */
QStringList fieldTypeNames();

/*!
 * The exact 64-bit integer \a v holds, or nullopt when it is not a whole number within
 * qint64's range. QJsonValue keeps integers it parsed or was given as qint64 exactly, but
 * toDouble() rounds them beyond 2^53 (qint64 max becomes 2^63, out of range): whole
 * numbers must be read with this, never through a double.
 */
std::optional<qint64> exactInteger(const QJsonValue &v);

/*! One problem with one argument. \c field is the argument's key. */
struct FieldError
{
    QString field;
    QString message;

    friend bool operator==(const FieldError &, const FieldError &) = default;
};
using FieldErrors = QList<FieldError>;

/*! Joins errors as "field: message; field: message" for one-line reports. */
QString formatFieldErrors(const FieldErrors &errors);

/*!
 * One typed task parameter: the source of a form control and of argument validation.
 *
 * Fields are plain values; build them with the fluent setters:
 * \code
 * auto f = Field(u"format"_s, FieldType::Select)
 *              .withTitle(u"Format"_s)
 *              .withChoices({{u"sql"_s, u"SQL Dump"_s}, {u"tar"_s, u"Compressed Archive"_s}})
 *              .withDefault(u"sql"_s);
 * \endcode
 */
class Field final
{
public:
    using Choices = QList<QPair<QString, QString>>; //!< value -> label, in display order

    Field() = default;
    Field(QString key, FieldType type);

    QString key;
    FieldType type = FieldType::Text;
    QString title;       //!< label; falls back to the key
    QString description; //!< help text
    QJsonValue defaultValue = QJsonValue::Undefined; //!< applied when the argument is missing
    bool required = false;
    Choices choices;     //!< for Select and MultiSelect
    std::optional<double> min; //!< Integer/Number: value bounds; text types: length bounds
    std::optional<double> max;
    QString pattern;     //!< text types: a regular expression the whole value must match
    QString placeholder;

    Field &withTitle(const QString &v) { title = v; return *this; }
    Field &withDescription(const QString &v) { description = v; return *this; }
    Field &withDefault(const QJsonValue &v) { defaultValue = v; return *this; }
    Field &withRequired(bool v = true) { required = v; return *this; }
    Field &withChoices(const Choices &v) { choices = v; return *this; }
    Field &withMin(double v) { min = v; return *this; }
    Field &withMax(double v) { max = v; return *this; }
    Field &withPattern(const QString &v) { pattern = v; return *this; }
    Field &withPlaceholder(const QString &v) { placeholder = v; return *this; }

    /*! The title, or the key when no title is set. */
    QString label() const;

    /*!
     * Coerces one raw argument into this field's typed value. \a raw may be a JSON value of
     * the right type or a string as typed on a command line or posted by a form ("42",
     * "true", "a,b" or a JSON array for multiselect). Returns the value, or nullopt with
     * \a error set to a message naming what is accepted. Does not apply defaults.
     */
    std::optional<QJsonValue> coerce(const QJsonValue &raw, QString *error) const;

    /*!
     * This field as a JSON Schema property (type, title, description, enum, bounds ...),
     * with "x-taskdeck-type" naming the field type. A Secret's default is never included.
     */
    QJsonObject toJsonSchema() const;
    /*!
     * This field as plain JSON (for listings and the web form); unset members are left
     * out. A Secret's default is replaced by "hasDefault": true.
     */
    QJsonObject toJson() const;
};
using Fields = QList<Field>;

/*! The outcome of validating a set of arguments against a field list. */
struct Validation
{
    QJsonObject values;  //!< typed values, defaults applied (only meaningful when ok())
    FieldErrors errors;  //!< every problem found, in field order, unknown arguments last
    bool ok() const { return errors.isEmpty(); }
};

/*!
 * Validates \a raw against \a fields: coerces every value, applies defaults, checks
 * required fields and reports unknown argument names. Returns all errors at once: field
 * errors in field order, then one error per unknown argument, sorted by name.
 *
 * An absent value, null or an empty string counts as missing, for every type (a form posts
 * "" for an input nobody touched). A missing value takes the field's default (coerced like
 * a given value; a default that does not coerce is an error on that field); with no default
 * a required field is an error and an optional one stays absent from Validation::values.
 * A required MultiSelect also rejects an empty selection. Error messages never repeat a
 * Secret's value. Pure function; safe to call from any thread.
 */
Validation validateArguments(const Fields &fields, const QJsonObject &raw);

/*!
 * A JSON Schema (draft 2020-12) object describing the arguments \a fields accept. Its
 * "required" list names the required fields without a default (validation fills in the
 * others), and "additionalProperties" is false since unknown arguments are rejected.
 */
QJsonObject fieldsToJsonSchema(const Fields &fields);

/*! Copy of \a args with every Secret field's value replaced by "********". */
QJsonObject redactSecrets(const Fields &fields, const QJsonObject &args);

/*! Secret values shorter than this many characters are not masked in logs (they would mask
 *  too much ordinary text). */
inline constexpr qsizetype kMinMaskedSecretLength = 4;

/*!
 * The values of \a fields' Secret arguments in \a args that maskSecrets() hides: those of at
 * least kMinMaskedSecretLength characters, longest first (so a secret that contains another
 * is masked whole), without repeats.
 */
QStringList secretValues(const Fields &fields, const QJsonObject &args);

/*!
 * \a text with every occurrence of each of \a secrets replaced by "********". Only the values
 * as given are found: an encoded form (base64, URL encoding, hex, a value split across lines)
 * is not masked.
 */
QString maskSecrets(const QStringList &secrets, QString text);

/*!
 * \a value with maskSecrets() applied to every string in it, object keys included, at any
 * depth; numbers, booleans and null as they are.
 */
QJsonValue maskSecrets(const QStringList &secrets, const QJsonValue &value);

} // namespace taskdeck
