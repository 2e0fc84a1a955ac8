// SPDX-License-Identifier: MIT
#include "field.h"

#include <QDate>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLocale>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QStringDecoder>
#include <QTest>
#include <QTime>

#include <ctime>
#include <limits>

using namespace Qt::StringLiterals;
using namespace taskdeck;

Q_DECLARE_METATYPE(taskdeck::Field)
Q_DECLARE_METATYPE(taskdeck::FieldError)
Q_DECLARE_METATYPE(taskdeck::FieldType)

namespace taskdeck {
// Found by QCOMPARE through ADL, so a failing list comparison names the differing error.
char *toString(const FieldError &e)
{
    return QTest::toString(QString(e.field + u": "_s + e.message));
}
} // namespace taskdeck

namespace {

// Compact JSON text, so comparisons show readable values and tell "5" from 5.
QString json(const QJsonValue &v)
{
    return QString::fromUtf8(QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact));
}

QString json(const QJsonObject &o)
{
    return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}

const Field::Choices FormatChoices{{u"sql"_s, u"SQL Dump"_s}, {u"tar"_s, u"Compressed Archive"_s}};
const Field::Choices PartChoices{{u"a"_s, u"Alpha"_s}, {u"b"_s, u"Beta"_s}, {u"c"_s, u"Gamma"_s}};

Field text(const QString &key = u"name"_s) { return Field(key, FieldType::Text); }
Field integer(const QString &key = u"count"_s) { return Field(key, FieldType::Integer); }
Field number(const QString &key = u"ratio"_s) { return Field(key, FieldType::Number); }
Field boolean(const QString &key = u"notify"_s) { return Field(key, FieldType::Bool); }
Field select(const QString &key = u"format"_s)
{
    return Field(key, FieldType::Select).withChoices(FormatChoices);
}
Field multi(const QString &key = u"parts"_s)
{
    return Field(key, FieldType::MultiSelect).withChoices(PartChoices);
}
Field file(const QString &key = u"input"_s) { return Field(key, FieldType::File); }
Field secret(const QString &key = u"password"_s) { return Field(key, FieldType::Secret); }
Field datetime(const QString &key = u"when"_s) { return Field(key, FieldType::DateTime); }

QJsonArray strings(const QStringList &list)
{
    return QJsonArray::fromStringList(list);
}

constexpr auto DateTimeAccepted = "expected an ISO 8601 date-time such as "
                                  "2026-11-26T10:00:00Z, 2026-11-26 10:00 or 2026-11-26"_L1;
constexpr auto BoolAccepted = "expected true or false (also yes/no, on/off, 1/0)"_L1;

} // namespace

class TestField : public QObject
{
    Q_OBJECT

private slots:
    void utf8Rule_data();
    void utf8Rule();
    void initTestCase();
    void cleanupTestCase();

    void typeNames_data();
    void typeNames();
    void typeNameList();
    void unknownTypeName_data();
    void unknownTypeName();

    void coerce_data();
    void coerce();
    void coerceAcceptsNullErrorPointer();
    void unreadableFile();
    void longValuesAreCutInMessages();

    void validate_data();
    void validate();
    void validateErrorsOnly_data();
    void validateErrorsOnly();
    void secretsNeverAppearInMessages();

    void formatErrors_data();
    void formatErrors();
    void label_data();
    void label();
    void toJson_data();
    void toJson();
    void schemaProperty_data();
    void schemaProperty();
    void schemaDocument();
    void schemaDocumentWithoutFields();
    void redact_data();
    void redact();

private:
    QTemporaryDir m_dir;
    QString m_file;    // a readable regular file inside m_dir
    QString m_oldCwd;
};

void TestField::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);

    // A zone with DST, far from UTC: "no zone means UTC" must not depend on where the
    // server runs, and a naive local-time parse fails inside the March DST gap.
    qputenv("TZ", "America/New_York");
    tzset();
    QCOMPARE(QDateTime(QDate(2026, 1, 15), QTime(12, 0)).offsetFromUtc(), -5 * 3600);

    // A locale where "1,5" is one and a half: number parsing must ignore it.
    QLocale::setDefault(QLocale(QLocale::German, QLocale::Germany));
    QCOMPARE(QLocale().toDouble(u"1,5"_s), 1.5);

    QVERIFY(m_dir.isValid());
    QVERIFY(QDir(m_dir.path()).mkdir(u"sub"_s));
    m_file = m_dir.filePath(u"data.txt"_s);
    QFile f(m_file);
    QVERIFY(f.open(QIODevice::WriteOnly));
    QVERIFY(f.write("payload\n") > 0);
    f.close();

    m_oldCwd = QDir::currentPath();
    QVERIFY(QDir::setCurrent(m_dir.path()));
}

void TestField::cleanupTestCase()
{
    QDir::setCurrent(m_oldCwd);
    QLocale::setDefault(QLocale::c());
}

void TestField::typeNames_data()
{
    QTest::addColumn<FieldType>("type");
    QTest::addColumn<QString>("name");
    QTest::newRow("text") << FieldType::Text << u"text"_s;
    QTest::newRow("textarea") << FieldType::Textarea << u"textarea"_s;
    QTest::newRow("integer") << FieldType::Integer << u"integer"_s;
    QTest::newRow("number") << FieldType::Number << u"number"_s;
    QTest::newRow("bool") << FieldType::Bool << u"bool"_s;
    QTest::newRow("select") << FieldType::Select << u"select"_s;
    QTest::newRow("multiselect") << FieldType::MultiSelect << u"multiselect"_s;
    QTest::newRow("file") << FieldType::File << u"file"_s;
    QTest::newRow("secret") << FieldType::Secret << u"secret"_s;
    QTest::newRow("datetime") << FieldType::DateTime << u"datetime"_s;
}

void TestField::typeNames()
{
    QFETCH(FieldType, type);
    QFETCH(QString, name);
    QCOMPARE(fieldTypeName(type), name);
    QCOMPARE(fieldTypeFromName(name), std::optional<FieldType>(type));
    QCOMPARE(fieldTypeFromName(name.toUpper()), std::optional<FieldType>(type));
    QVERIFY(fieldTypeNames().contains(name));
}

void TestField::typeNameList()
{
    const QStringList expected{u"text"_s,   u"textarea"_s,    u"integer"_s, u"number"_s,
                               u"bool"_s,   u"select"_s,      u"multiselect"_s,
                               u"file"_s,   u"secret"_s,      u"datetime"_s};
    QCOMPARE(fieldTypeNames(), expected);
}

void TestField::unknownTypeName_data()
{
    QTest::addColumn<QString>("name");
    QTest::newRow("empty") << QString();
    QTest::newRow("string") << u"string"_s;
    QTest::newRow("int") << u"int"_s;
    QTest::newRow("boolean") << u"boolean"_s;
    QTest::newRow("leading space") << u" text"_s;
    QTest::newRow("dashed") << u"multi-select"_s;
    QTest::newRow("date") << u"date"_s;
}

void TestField::unknownTypeName()
{
    QFETCH(QString, name);
    QCOMPARE(fieldTypeFromName(name), std::nullopt);
}

void TestField::coerce_data()
{
    QTest::addColumn<Field>("field");
    QTest::addColumn<QJsonValue>("raw");
    QTest::addColumn<QJsonValue>("expected"); // Undefined: coercion must fail
    QTest::addColumn<QString>("error");

    const auto good = [](const char *tag, const Field &f, const QJsonValue &raw,
                         const QJsonValue &out) {
        QTest::newRow(tag) << f << raw << out << QString();
    };
    const auto bad = [](const char *tag, const Field &f, const QJsonValue &raw,
                        const QString &error) {
        QTest::newRow(tag) << f << raw << QJsonValue(QJsonValue::Undefined) << error;
    };

    // text / textarea / secret
    good("text: string", text(), u"hello"_s, u"hello"_s);
    good("text: keeps spaces", text(), u"  padded "_s, u"  padded "_s);
    good("text: integer json", text(), 42, u"42"_s);
    good("text: fraction json", text(), 2.5, u"2.5"_s);
    good("text: bool json", text(), true, u"true"_s);
    bad("text: array", text(), QJsonArray{u"a"_s}, u"expected text (got an array)"_s);
    const QString nul = u"contains a NUL character (U+0000), which cannot be passed to a command"_s;
    bad("text: NUL", text(), QString(u"a"_s + QChar::Null + u"b"_s), nul);
    bad("textarea: NUL", Field(u"notes"_s, FieldType::Textarea), QString(QChar::Null), nul);
    bad("secret: NUL", secret(), QString(u"hunter"_s + QChar::Null + u"2"_s), nul);
    bad("file: NUL", file(), QString(u"data.txt"_s + QChar::Null + u"x"_s), nul);
    const QString tooLong = u"expected text: a JSON number this long may not keep its digits; give "
                            u"it as a JSON string"_s;
    bad("text: json number beyond 64 bits", text(),
        QJsonDocument::fromJson("[12345678901234567890]").array().at(0),
        tooLong + u" (got 12345678901234567000)"_s);
    bad("text: json fraction of 17 digits", text(), 0.12345678901234568,
        tooLong + u" (got 0.12345678901234568)"_s);
    good("text: json 64-bit integer kept exactly", text(),
         QJsonDocument::fromJson("[9223372036854775807]").array().at(0), u"9223372036854775807"_s);
    bad("text: object", text(), QJsonObject{}, u"expected text (got an object)"_s);
    good("textarea: lines kept", Field(u"notes"_s, FieldType::Textarea), u"a\nb"_s, u"a\nb"_s);

    const Field bounded = text().withMin(3).withMax(5);
    good("text: length at min", bounded, u"abc"_s, u"abc"_s);
    good("text: length at max", bounded, u"abcde"_s, u"abcde"_s);
    bad("text: too short", bounded, u"ab"_s,
        u"expected 3 to 5 characters (got 2 characters: \"ab\")"_s);
    bad("text: too long", bounded, u"abcdef"_s,
        u"expected 3 to 5 characters (got 6 characters: \"abcdef\")"_s);
    bad("text: min only", text().withMin(1), u""_s,
        u"expected at least 1 character (got 0 characters: \"\")"_s);
    bad("text: max only", text().withMax(2), u"abc"_s,
        u"expected at most 2 characters (got 3 characters: \"abc\")"_s);
    good("text: length counts characters not UTF-16 units", text().withMax(2),
         u"\U0001F600\U0001F600"_s, u"\U0001F600\U0001F600"_s);
    bad("textarea: length bounds too", Field(u"notes"_s, FieldType::Textarea).withMax(3),
        u"a\nbc"_s, u"expected at most 3 characters (got 4 characters: \"a\\nbc\")"_s);

    const Field lower = text().withPattern(u"[a-z]+"_s);
    good("pattern: whole match", lower, u"abc"_s, u"abc"_s);
    bad("pattern: trailing junk", lower, u"abc1"_s,
        u"expected text matching the pattern [a-z]+ (got \"abc1\")"_s);
    bad("pattern: leading junk", lower, u"1abc"_s,
        u"expected text matching the pattern [a-z]+ (got \"1abc\")"_s);
    bad("pattern: trailing newline", lower, u"abc\n"_s,
        u"expected text matching the pattern [a-z]+ (got \"abc\\n\")"_s);
    good("pattern: alternation anchored as a group", text().withPattern(u"ab|cd"_s), u"cd"_s,
         u"cd"_s);
    bad("pattern: alternation does not leak", text().withPattern(u"ab|cd"_s), u"abcd"_s,
        u"expected text matching the pattern ab|cd (got \"abcd\")"_s);
    bad("pattern: invalid", text().withPattern(u"[a-"_s), u"x"_s,
        u"the task's pattern \"[a-\" is not a valid regular expression "
        "(missing terminating ] for character class)"_s);

    good("secret: string", secret(), u"hunter2"_s, u"hunter2"_s);
    bad("secret: too short hides value", secret().withMin(8), u"hunter2"_s,
        u"expected at least 8 characters (got 7 characters)"_s);
    bad("secret: pattern hides value", secret().withPattern(u"[0-9]+"_s), u"hunter2"_s,
        u"expected text matching the pattern [0-9]+ (got 7 hidden characters)"_s);
    bad("secret: array", secret(), QJsonArray{}, u"expected text (got an array)"_s);

    // integer
    good("integer: string", integer(), u"42"_s, qint64(42));
    good("integer: padded string", integer(), u" 42 "_s, qint64(42));
    good("integer: plus sign", integer(), u"+7"_s, qint64(7));
    good("integer: negative", integer(), u"-13"_s, qint64(-13));
    good("integer: json", integer(), 42, qint64(42));
    good("integer: integral json double", integer(), 1e3, qint64(1000));
    good("integer: qint64 max", integer(), u"9223372036854775807"_s,
         std::numeric_limits<qint64>::max());
    good("integer: qint64 min", integer(), u"-9223372036854775808"_s,
         std::numeric_limits<qint64>::min());
    good("integer: beyond 2^53 stays exact", integer(), u"9007199254740993"_s,
         qint64(9007199254740993));
    bad("integer: fraction string", integer(), u"2.5"_s,
        u"expected a whole number (got \"2.5\")"_s);
    bad("integer: fraction json", integer(), 2.5, u"expected a whole number (got 2.5)"_s);
    bad("integer: trailing junk", integer(), u"12abc"_s,
        u"expected a whole number (got \"12abc\")"_s);
    bad("integer: empty", integer(), u""_s, u"expected a whole number (got \"\")"_s);
    bad("integer: exponent string", integer(), u"1e3"_s,
        u"expected a whole number (got \"1e3\")"_s);
    bad("integer: grouped", integer(), u"1,000"_s, u"expected a whole number (got \"1,000\")"_s);
    bad("integer: overflow string", integer(), u"9223372036854775808"_s,
        u"expected a whole number from -9223372036854775808 to 9223372036854775807 "
        "(got \"9223372036854775808\")"_s);
    bad("integer: underflow string", integer(), u"-9223372036854775809"_s,
        u"expected a whole number from -9223372036854775808 to 9223372036854775807 "
        "(got \"-9223372036854775809\")"_s);
    bad("integer: overflow json", integer(), 1e19,
        u"expected a whole number from -9223372036854775808 to 9223372036854775807 "
        "(got 1e+19)"_s);
    const auto parsed = [](const char *text) {
        return QJsonDocument::fromJson(QByteArray("[") + text + "]").array().at(0);
    };
    good("integer: qint64 max as json", integer(), QJsonValue(std::numeric_limits<qint64>::max()),
         std::numeric_limits<qint64>::max());
    good("integer: qint64 max parsed from json", integer(), parsed("9223372036854775807"),
         std::numeric_limits<qint64>::max());
    good("integer: qint64 min parsed from json", integer(), parsed("-9223372036854775808"),
         std::numeric_limits<qint64>::min());
    good("integer: beyond 2^53 parsed from json", integer(), parsed("9007199254740993"),
         qint64(9007199254740993));
    bad("integer: 2^63 parsed from json", integer(), parsed("9223372036854775808"),
        u"expected a whole number from -9223372036854775808 to 9223372036854775807 "
        "(got 9223372036854776000)"_s);
    bad("integer: bound compared exactly", integer().withMax(9007199254740992.0),
        u"9007199254740993"_s,
        u"expected a whole number of at most 9007199254740992 (got \"9007199254740993\")"_s);
    bad("integer: overflow names field bounds", integer().withMin(0),
        u"99999999999999999999"_s,
        u"expected a whole number of at least 0 (got \"99999999999999999999\")"_s);
    bad("integer: bool", integer(), true, u"expected a whole number (got true)"_s);
    bad("integer: null", integer(), QJsonValue(QJsonValue::Null),
        u"expected a whole number (got null)"_s);
    const Field oneToTen = integer().withMin(1).withMax(10);
    good("integer: min inclusive", oneToTen, u"1"_s, qint64(1));
    good("integer: max inclusive", oneToTen, 10, qint64(10));
    bad("integer: below min", oneToTen, u"0"_s,
        u"expected a whole number from 1 to 10 (got \"0\")"_s);
    bad("integer: above max", oneToTen, 11, u"expected a whole number from 1 to 10 (got 11)"_s);
    bad("integer: max only", integer().withMax(3), 4,
        u"expected a whole number of at most 3 (got 4)"_s);

    // number
    good("number: string", number(), u"1.5"_s, 1.5);
    good("number: padded negative", number(), u" -2.25 "_s, -2.25);
    good("number: exponent", number(), u"1e3"_s, 1000.0);
    good("number: leading dot", number(), u".5"_s, 0.5);
    good("number: integer string", number(), u"42"_s, 42.0);
    good("number: json", number(), 3.25, 3.25);
    bad("number: decimal comma despite locale", number(), u"1,5"_s,
        u"expected a number (got \"1,5\")"_s);
    bad("number: group separator", number(), u"1,000"_s, u"expected a number (got \"1,000\")"_s);
    bad("number: nan", number(), u"nan"_s, u"expected a number (got \"nan\")"_s);
    bad("number: inf", number(), u"inf"_s, u"expected a number (got \"inf\")"_s);
    bad("number: overflow", number(), u"1e999"_s, u"expected a number (got \"1e999\")"_s);
    bad("number: junk", number(), u"1.5kg"_s, u"expected a number (got \"1.5kg\")"_s);
    bad("number: hex", number(), u"0x10"_s, u"expected a number (got \"0x10\")"_s);
    bad("number: empty", number(), u""_s, u"expected a number (got \"\")"_s);
    bad("number: bool", number(), false, u"expected a number (got false)"_s);
    const Field unit = number().withMin(0).withMax(1);
    good("number: max inclusive", unit, 1, 1.0);
    bad("number: above max", unit, u"1.5"_s, u"expected a number from 0 to 1 (got \"1.5\")"_s);
    bad("number: below fractional min", number().withMin(0.5), 0.25,
        u"expected a number of at least 0.5 (got 0.25)"_s);

    // bool
    good("bool: json true", boolean(), true, true);
    good("bool: json false", boolean(), false, false);
    good("bool: true", boolean(), u"true"_s, true);
    good("bool: FALSE", boolean(), u"FALSE"_s, false);
    good("bool: 1", boolean(), u"1"_s, true);
    good("bool: 0", boolean(), u"0"_s, false);
    good("bool: yes", boolean(), u"yes"_s, true);
    good("bool: No", boolean(), u"No"_s, false);
    good("bool: checkbox on", boolean(), u"on"_s, true);
    good("bool: off", boolean(), u"off"_s, false);
    good("bool: padded", boolean(), u" on "_s, true);
    good("bool: json 1", boolean(), 1, true);
    good("bool: json 0", boolean(), 0, false);
    bad("bool: maybe", boolean(), u"maybe"_s, BoolAccepted + u" (got \"maybe\")"_s);
    bad("bool: json 2", boolean(), 2, BoolAccepted + u" (got 2)"_s);
    bad("bool: empty", boolean(), u""_s, BoolAccepted + u" (got \"\")"_s);
    bad("bool: array", boolean(), QJsonArray{true}, BoolAccepted + u" (got an array)"_s);

    // select
    good("select: value", select(), u"sql"_s, u"sql"_s);
    good("select: padded value", select(), u" tar "_s, u"tar"_s);
    bad("select: unknown", select(), u"zip"_s, u"expected one of: sql, tar (got \"zip\")"_s);
    bad("select: case matters", select(), u"SQL"_s, u"expected one of: sql, tar (got \"SQL\")"_s);
    bad("select: label is not a value", select(), u"SQL Dump"_s,
        u"expected one of: sql, tar (got \"SQL Dump\")"_s);
    bad("select: array", select(), QJsonArray{u"sql"_s},
        u"expected one of: sql, tar (got an array)"_s);
    const Field levels = Field(u"level"_s, FieldType::Select)
                             .withChoices({{u"1"_s, u"Low"_s}, {u"2"_s, u"High"_s}});
    good("select: json number as text", levels, 2, u"2"_s);
    bad("select: json number unknown", levels, 3, u"expected one of: 1, 2 (got 3)"_s);
    bad("select: no choices", Field(u"x"_s, FieldType::Select), u"x"_s,
        u"the task lists no choices for this field (got \"x\")"_s);

    // multiselect
    good("multi: json array", multi(), strings({u"a"_s, u"c"_s}), strings({u"a"_s, u"c"_s}));
    good("multi: csv", multi(), u"a,b"_s, strings({u"a"_s, u"b"_s}));
    good("multi: csv spaces and duplicates", multi(), u"b, a ,b,"_s, strings({u"b"_s, u"a"_s}));
    good("multi: json text", multi(), u"[\"c\", \"a\"]"_s, strings({u"c"_s, u"a"_s}));
    good("multi: array duplicates keep first order", multi(),
         strings({u"c"_s, u"a"_s, u"c"_s, u"b"_s}), strings({u"c"_s, u"a"_s, u"b"_s}));
    good("multi: single value", multi(), u"b"_s, strings({u"b"_s}));
    good("multi: empty array", multi(), QJsonArray{}, QJsonArray{});
    bad("multi: csv unknown item", multi(), u"a,zip"_s,
        u"expected any of: a, b, c (got \"zip\")"_s);
    bad("multi: array unknown items listed once", multi(),
        strings({u"zip"_s, u"a"_s, u"rar"_s, u"zip"_s}),
        u"expected any of: a, b, c (got \"zip\", \"rar\")"_s);
    bad("multi: json text unknown item", multi(), u"[\"a\",\"d\"]"_s,
        u"expected any of: a, b, c (got \"d\")"_s);
    bad("multi: broken json text", multi(), u"[\"a\", "_s,
        u"expected a JSON array or a comma-separated list of: a, b, c (got \"[\\\"a\\\", \")"_s);
    bad("multi: object in list", multi(), QJsonArray{QJsonObject{}},
        u"expected a JSON array or a comma-separated list of: a, b, c "
        "(got an object in the list)"_s);
    bad("multi: bool", multi(), true,
        u"expected a JSON array or a comma-separated list of: a, b, c (got true)"_s);

    // file
    good("file: absolute", file(), m_file, m_file);
    good("file: relative made absolute", file(), u"data.txt"_s, m_file);
    good("file: cleaned", file(), QString(m_dir.path() + u"/sub/../data.txt"_s), m_file);
    const QString missing = m_dir.filePath(u"nope.txt"_s);
    bad("file: missing", file(), missing,
        u"no such file: \""_s + missing + u"\" (expected a path to a readable file)"_s);
    bad("file: directory", file(), m_dir.path(),
        u"not a regular file: \""_s + m_dir.path()
            + u"\" (expected a path to a readable file)"_s);
    bad("file: empty", file(), u""_s, u"expected a path to a readable file (got \"\")"_s);
    bad("file: number", file(), 5, u"expected a path to a readable file (got 5)"_s);

    // datetime
    good("datetime: utc", datetime(), u"2026-11-26T10:00:00Z"_s, u"2026-11-26T10:00:00.000Z"_s);
    good("datetime: offset", datetime(), u"2026-11-26T10:00:00+02:00"_s,
         u"2026-11-26T08:00:00.000Z"_s);
    good("datetime: negative offset with ms", datetime(), u"2026-11-26T10:00:00.123-05:30"_s,
         u"2026-11-26T15:30:00.123Z"_s);
    good("datetime: offset crosses midnight", datetime(), u"2026-11-26T23:30:00-01:00"_s,
         u"2026-11-27T00:30:00.000Z"_s);
    good("datetime: space and no seconds", datetime(), u"2026-11-26 10:00"_s,
         u"2026-11-26T10:00:00.000Z"_s);
    good("datetime: no zone is utc", datetime(), u"2026-11-26T10:00:00"_s,
         u"2026-11-26T10:00:00.000Z"_s);
    good("datetime: no zone inside a local DST gap", datetime(), u"2026-03-08T02:30"_s,
         u"2026-03-08T02:30:00.000Z"_s);
    good("datetime: date only is midnight utc", datetime(), u"2026-11-26"_s,
         u"2026-11-26T00:00:00.000Z"_s);
    good("datetime: padded", datetime(), u" 2026-11-26 "_s, u"2026-11-26T00:00:00.000Z"_s);
    bad("datetime: impossible date", datetime(), u"2026-02-30"_s,
        DateTimeAccepted + u" (got \"2026-02-30\")"_s);
    bad("datetime: impossible hour", datetime(), u"2026-11-26T25:00"_s,
        DateTimeAccepted + u" (got \"2026-11-26T25:00\")"_s);
    bad("datetime: words", datetime(), u"tomorrow"_s, DateTimeAccepted + u" (got \"tomorrow\")"_s);
    bad("datetime: local format", datetime(), u"26.11.2026"_s,
        DateTimeAccepted + u" (got \"26.11.2026\")"_s);
    bad("datetime: epoch number", datetime(), 1764151200,
        DateTimeAccepted + u" (got 1764151200)"_s);
}

void TestField::coerce()
{
    QFETCH(Field, field);
    QFETCH(QJsonValue, raw);
    QFETCH(QJsonValue, expected);
    QFETCH(QString, error);

    QString actualError;
    const std::optional<QJsonValue> value = field.coerce(raw, &actualError);
    if (expected.isUndefined()) {
        QVERIFY2(!value, qPrintable(u"accepted as "_s + json(value.value_or(QJsonValue()))));
        QCOMPARE(actualError, error);
    } else {
        QVERIFY2(value, qPrintable(actualError));
        QCOMPARE(value->type(), expected.type());
        QCOMPARE(json(*value), json(expected));
    }
}

void TestField::coerceAcceptsNullErrorPointer()
{
    QCOMPARE(integer().coerce(u"x"_s, nullptr), std::nullopt);
    QCOMPARE(integer().coerce(u"3"_s, nullptr), std::optional<QJsonValue>(qint64(3)));
}

void TestField::unreadableFile()
{
    const QString path = m_dir.filePath(u"locked.txt"_s);
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.close();
    QVERIFY(QFile::setPermissions(path, QFileDevice::WriteOwner));
    if (QFileInfo(path).isReadable())
        QSKIP("this user can read any file (root?), so unreadable files cannot be made");

    QString error;
    QCOMPARE(file().coerce(path, &error), std::nullopt);
    QCOMPARE(error, u"not readable: \""_s + path + u"\" (expected a path to a readable file)"_s);
}

void TestField::longValuesAreCutInMessages()
{
    const QString given = QString(100, u'x');
    QString error;
    QCOMPARE(select().coerce(given, &error), std::nullopt);
    QCOMPARE(error, u"expected one of: sql, tar (got \""_s + QString(60, u'x') + QChar(0x2026)
                        + u"\")"_s);

    // The cut never splits a character made of two UTF-16 units.
    const QString emoji = QString(59, u'y') + u"\U0001F600\U0001F600"_s;
    QCOMPARE(select().coerce(emoji, &error), std::nullopt);
    QCOMPARE(error, u"expected one of: sql, tar (got \""_s + QString(59, u'y')
                        + u"\U0001F600"_s + QChar(0x2026) + u"\")"_s);
}

void TestField::validate_data()
{
    QTest::addColumn<Fields>("fields");
    QTest::addColumn<QJsonObject>("raw");
    QTest::addColumn<QJsonObject>("values");

    const Fields all{text(), integer(), number(), boolean(), select(), multi(), datetime()};
    QTest::newRow("html form post: every value a string")
        << all
        << QJsonObject{{u"name"_s, u"Ann"_s},      {u"count"_s, u"42"_s},
                       {u"ratio"_s, u"0.5"_s},     {u"notify"_s, u"on"_s},
                       {u"format"_s, u"tar"_s},    {u"parts"_s, u"a,b"_s},
                       {u"when"_s, u"2026-11-26"_s}}
        << QJsonObject{{u"name"_s, u"Ann"_s},
                       {u"count"_s, 42},
                       {u"ratio"_s, 0.5},
                       {u"notify"_s, true},
                       {u"format"_s, u"tar"_s},
                       {u"parts"_s, strings({u"a"_s, u"b"_s})},
                       {u"when"_s, u"2026-11-26T00:00:00.000Z"_s}};
    QTest::newRow("json body: typed values")
        << all
        << QJsonObject{{u"name"_s, u"Ann"_s},
                       {u"count"_s, 42},
                       {u"ratio"_s, 0.5},
                       {u"notify"_s, false},
                       {u"format"_s, u"sql"_s},
                       {u"parts"_s, strings({u"c"_s})},
                       {u"when"_s, u"2026-11-26T10:00:00+01:00"_s}}
        << QJsonObject{{u"name"_s, u"Ann"_s},
                       {u"count"_s, 42},
                       {u"ratio"_s, 0.5},
                       {u"notify"_s, false},
                       {u"format"_s, u"sql"_s},
                       {u"parts"_s, strings({u"c"_s})},
                       {u"when"_s, u"2026-11-26T09:00:00.000Z"_s}};
    QTest::newRow("optional missing values stay absent") << all << QJsonObject{} << QJsonObject{};
    QTest::newRow("empty string and null count as missing")
        << Fields{text(), integer(), boolean(), secret(), file()}
        << QJsonObject{{u"name"_s, u""_s},
                       {u"count"_s, u""_s},
                       {u"notify"_s, QJsonValue::Null},
                       {u"password"_s, u""_s},
                       {u"input"_s, u""_s}}
        << QJsonObject{};
    QTest::newRow("defaults applied and coerced")
        << Fields{text().withDefault(u"hi"_s), integer().withDefault(u"5"_s),
                  boolean().withDefault(u"on"_s), select().withDefault(u"tar"_s),
                  multi().withDefault(u"a,c"_s), datetime().withDefault(u"2026-01-02"_s)}
        << QJsonObject{}
        << QJsonObject{{u"name"_s, u"hi"_s},
                       {u"count"_s, 5},
                       {u"notify"_s, true},
                       {u"format"_s, u"tar"_s},
                       {u"parts"_s, strings({u"a"_s, u"c"_s})},
                       {u"when"_s, u"2026-01-02T00:00:00.000Z"_s}};
    QTest::newRow("empty string takes the default")
        << Fields{text().withDefault(u"hi"_s), integer().withDefault(5)}
        << QJsonObject{{u"name"_s, u""_s}, {u"count"_s, u""_s}}
        << QJsonObject{{u"name"_s, u"hi"_s}, {u"count"_s, 5}};
    QTest::newRow("given value beats the default")
        << Fields{integer().withDefault(5)} << QJsonObject{{u"count"_s, u"7"_s}}
        << QJsonObject{{u"count"_s, 7}};
    QTest::newRow("invalid default unused when a value is given")
        << Fields{integer().withDefault(u"abc"_s)} << QJsonObject{{u"count"_s, 3}}
        << QJsonObject{{u"count"_s, 3}};
    QTest::newRow("required satisfied by its default")
        << Fields{select().withRequired().withDefault(u"sql"_s)} << QJsonObject{}
        << QJsonObject{{u"format"_s, u"sql"_s}};
    QTest::newRow("optional multiselect keeps an explicit empty selection")
        << Fields{multi().withDefault(u"a"_s)} << QJsonObject{{u"parts"_s, QJsonArray{}}}
        << QJsonObject{{u"parts"_s, QJsonArray{}}};
    QTest::newRow("file is made absolute")
        << Fields{file()} << QJsonObject{{u"input"_s, u"data.txt"_s}}
        << QJsonObject{{u"input"_s, m_file}};
}

void TestField::validate()
{
    QFETCH(Fields, fields);
    QFETCH(QJsonObject, raw);
    QFETCH(QJsonObject, values);

    const Validation result = validateArguments(fields, raw);
    QVERIFY2(result.ok(), qPrintable(formatFieldErrors(result.errors)));
    QCOMPARE(result.errors, FieldErrors{});
    QCOMPARE(json(result.values), json(values));
}

void TestField::validateErrorsOnly_data()
{
    QTest::addColumn<Fields>("fields");
    QTest::addColumn<QJsonObject>("raw");
    QTest::addColumn<FieldErrors>("errors");

    QTest::newRow("invalid default")
        << Fields{integer().withDefault(u"abc"_s)} << QJsonObject{}
        << FieldErrors{{u"count"_s,
                        u"the task's default is invalid: expected a whole number (got \"abc\")"_s}};
    QTest::newRow("invalid default on empty string")
        << Fields{select().withDefault(u"zip"_s)} << QJsonObject{{u"format"_s, u""_s}}
        << FieldErrors{{u"format"_s, u"the task's default is invalid: "
                                     "expected one of: sql, tar (got \"zip\")"_s}};
    QTest::newRow("required absent")
        << Fields{integer().withRequired().withMin(1).withMax(10)} << QJsonObject{}
        << FieldErrors{{u"count"_s, u"is required (expected a whole number from 1 to 10)"_s}};
    QTest::newRow("required null")
        << Fields{select().withRequired()} << QJsonObject{{u"format"_s, QJsonValue::Null}}
        << FieldErrors{{u"format"_s, u"is required (expected one of: sql, tar)"_s}};
    QTest::newRow("required text empty")
        << Fields{text().withRequired()} << QJsonObject{{u"name"_s, u""_s}}
        << FieldErrors{{u"name"_s, u"is required (expected text)"_s}};
    QTest::newRow("required file empty")
        << Fields{file().withRequired()} << QJsonObject{{u"input"_s, u""_s}}
        << FieldErrors{{u"input"_s, u"is required (expected a path to a readable file)"_s}};
    QTest::newRow("required bool absent")
        << Fields{boolean().withRequired()} << QJsonObject{}
        << FieldErrors{{u"notify"_s, u"is required (expected true or false)"_s}};
    QTest::newRow("required datetime absent")
        << Fields{datetime().withRequired()} << QJsonObject{}
        << FieldErrors{{u"when"_s, u"is required (expected an ISO 8601 date-time)"_s}};
    QTest::newRow("required multiselect empty selection")
        << Fields{multi().withRequired()} << QJsonObject{{u"parts"_s, u","_s}}
        << FieldErrors{{u"parts"_s, u"is required (choose at least one of: a, b, c)"_s}};
    QTest::newRow("unknown arguments sorted")
        << Fields{text(u"b"_s), text(u"a"_s)}
        << QJsonObject{{u"a"_s, u"x"_s}, {u"zeta"_s, 1}, {u"beta"_s, 1}}
        << FieldErrors{{u"beta"_s, u"unknown argument (accepted: b, a)"_s},
                       {u"zeta"_s, u"unknown argument (accepted: b, a)"_s}};
    QTest::newRow("task without arguments")
        << Fields{} << QJsonObject{{u"x"_s, 1}}
        << FieldErrors{{u"x"_s, u"unknown argument (this task takes no arguments)"_s}};
    // Field order differs from key order here, so the order of the report is checked too.
    QTest::newRow("every error at once in field order, unknown last")
        << Fields{integer(u"zcount"_s).withRequired(), select(u"archive"_s), boolean(u"mail"_s),
                  text(u"ok"_s)}
        << QJsonObject{{u"mail"_s, u"maybe"_s},
                       {u"archive"_s, u"zip"_s},
                       {u"ok"_s, u"fine"_s},
                       {u"extra"_s, 1},
                       {u"another"_s, true}}
        << FieldErrors{{u"zcount"_s, u"is required (expected a whole number)"_s},
                       {u"archive"_s, u"expected one of: sql, tar (got \"zip\")"_s},
                       {u"mail"_s, BoolAccepted + u" (got \"maybe\")"_s},
                       {u"another"_s, u"unknown argument (accepted: zcount, archive, mail, ok)"_s},
                       {u"extra"_s, u"unknown argument (accepted: zcount, archive, mail, ok)"_s}};
}

void TestField::validateErrorsOnly()
{
    QFETCH(Fields, fields);
    QFETCH(QJsonObject, raw);
    QFETCH(FieldErrors, errors);

    const Validation result = validateArguments(fields, raw);
    QVERIFY(!result.ok());
    QCOMPARE(result.errors, errors);
}

void TestField::secretsNeverAppearInMessages()
{
    const QString value = u"hunter2-very-secret"_s;
    const Fields fields{secret().withPattern(u"[0-9]{6}"_s).withRequired(),
                        secret(u"token"_s).withMax(4)};
    const Validation result =
        validateArguments(fields, {{u"password"_s, value}, {u"token"_s, value}});
    QCOMPARE(result.errors.size(), 2);
    const QString report = formatFieldErrors(result.errors);
    QVERIFY2(!report.contains(u"hunter2"_s), qPrintable(report));
    QVERIFY2(report.contains(u"19 hidden characters"_s), qPrintable(report));
    QVERIFY2(report.contains(u"got 19 characters)"_s), qPrintable(report));

    const Validation badDefault =
        validateArguments({secret().withDefault(u"short"_s).withMin(8)}, QJsonObject{});
    QCOMPARE(badDefault.errors.size(), 1);
    QVERIFY2(!badDefault.errors.first().message.contains(u"short"_s),
             qPrintable(badDefault.errors.first().message));
}

void TestField::formatErrors_data()
{
    QTest::addColumn<FieldErrors>("errors");
    QTest::addColumn<QString>("expected");
    QTest::newRow("none") << FieldErrors{} << QString();
    QTest::newRow("one") << FieldErrors{{u"count"_s, u"is required"_s}}
                         << u"count: is required"_s;
    QTest::newRow("two") << FieldErrors{{u"a"_s, u"bad"_s}, {u"b"_s, u"worse"_s}}
                         << u"a: bad; b: worse"_s;
}

void TestField::formatErrors()
{
    QFETCH(FieldErrors, errors);
    QFETCH(QString, expected);
    QCOMPARE(formatFieldErrors(errors), expected);
}

void TestField::label_data()
{
    QTest::addColumn<Field>("field");
    QTest::addColumn<QString>("expected");
    QTest::newRow("title") << text().withTitle(u"Full name"_s) << u"Full name"_s;
    QTest::newRow("key fallback") << text() << u"name"_s;
}

void TestField::label()
{
    QFETCH(Field, field);
    QFETCH(QString, expected);
    QCOMPARE(field.label(), expected);
}

void TestField::toJson_data()
{
    QTest::addColumn<Field>("field");
    QTest::addColumn<QJsonObject>("expected");

    QTest::newRow("minimal")
        << text()
        << QJsonObject{{u"key"_s, u"name"_s}, {u"type"_s, u"text"_s}, {u"required"_s, false}};
    QTest::newRow("full")
        << integer()
               .withTitle(u"Count"_s)
               .withDescription(u"How many"_s)
               .withDefault(5)
               .withRequired()
               .withMin(1)
               .withMax(10)
               .withPlaceholder(u"1-10"_s)
        << QJsonObject{{u"key"_s, u"count"_s},        {u"type"_s, u"integer"_s},
                       {u"title"_s, u"Count"_s},      {u"description"_s, u"How many"_s},
                       {u"default"_s, 5},             {u"required"_s, true},
                       {u"min"_s, 1},                 {u"max"_s, 10},
                       {u"placeholder"_s, u"1-10"_s}};
    QTest::newRow("choices and pattern")
        << Field(u"format"_s, FieldType::Select)
               .withChoices({{u"sql"_s, u"SQL Dump"_s}, {u"tar"_s, QString()}})
               .withPattern(u"[a-z]+"_s)
        << QJsonObject{{u"key"_s, u"format"_s},
                       {u"type"_s, u"select"_s},
                       {u"required"_s, false},
                       {u"choices"_s,
                        QJsonArray{QJsonObject{{u"value"_s, u"sql"_s}, {u"label"_s, u"SQL Dump"_s}},
                                   QJsonObject{{u"value"_s, u"tar"_s}, {u"label"_s, u"tar"_s}}}},
                       {u"pattern"_s, u"[a-z]+"_s}};
    QTest::newRow("secret default is not shown")
        << secret().withDefault(u"hunter2"_s)
        << QJsonObject{{u"key"_s, u"password"_s},
                       {u"type"_s, u"secret"_s},
                       {u"required"_s, false},
                       {u"hasDefault"_s, true}};
}

void TestField::toJson()
{
    QFETCH(Field, field);
    QFETCH(QJsonObject, expected);
    QCOMPARE(json(field.toJson()), json(expected));
}

void TestField::schemaProperty_data()
{
    QTest::addColumn<Field>("field");
    QTest::addColumn<QJsonObject>("expected");

    const QJsonArray formatEnum{u"sql"_s, u"tar"_s};
    const QJsonArray formatOneOf{
        QJsonObject{{u"const"_s, u"sql"_s}, {u"title"_s, u"SQL Dump"_s}},
        QJsonObject{{u"const"_s, u"tar"_s}, {u"title"_s, u"Compressed Archive"_s}}};
    const QJsonArray partEnum{u"a"_s, u"b"_s, u"c"_s};
    const QJsonArray partOneOf{QJsonObject{{u"const"_s, u"a"_s}, {u"title"_s, u"Alpha"_s}},
                               QJsonObject{{u"const"_s, u"b"_s}, {u"title"_s, u"Beta"_s}},
                               QJsonObject{{u"const"_s, u"c"_s}, {u"title"_s, u"Gamma"_s}}};

    QTest::newRow("text")
        << text()
               .withTitle(u"Name"_s)
               .withDescription(u"Who"_s)
               .withMin(2)
               .withMax(40)
               .withPattern(u"[A-Za-z ]+"_s)
               .withDefault(u"Ann"_s)
               .withPlaceholder(u"Jane Doe"_s)
        << QJsonObject{{u"title"_s, u"Name"_s},
                       {u"description"_s, u"Who"_s},
                       {u"x-taskdeck-type"_s, u"text"_s},
                       {u"x-placeholder"_s, u"Jane Doe"_s},
                       {u"type"_s, u"string"_s},
                       {u"minLength"_s, 2},
                       {u"maxLength"_s, 40},
                       {u"pattern"_s, u"^(?:[A-Za-z ]+)$"_s},
                       {u"default"_s, u"Ann"_s}};
    QTest::newRow("text required needs one character")
        << text().withRequired()
        << QJsonObject{{u"title"_s, u"name"_s},
                       {u"x-taskdeck-type"_s, u"text"_s},
                       {u"type"_s, u"string"_s},
                       {u"minLength"_s, 1}};
    QTest::newRow("textarea")
        << Field(u"notes"_s, FieldType::Textarea)
        << QJsonObject{{u"title"_s, u"notes"_s},
                       {u"x-taskdeck-type"_s, u"textarea"_s},
                       {u"type"_s, u"string"_s}};
    QTest::newRow("integer")
        << integer().withMin(1).withMax(10).withDefault(u"5"_s)
        << QJsonObject{{u"title"_s, u"count"_s},
                       {u"x-taskdeck-type"_s, u"integer"_s},
                       {u"type"_s, u"integer"_s},
                       {u"minimum"_s, 1},
                       {u"maximum"_s, 10},
                       {u"default"_s, 5}};
    QTest::newRow("integer with invalid default leaves it out")
        << integer().withDefault(u"abc"_s)
        << QJsonObject{{u"title"_s, u"count"_s},
                       {u"x-taskdeck-type"_s, u"integer"_s},
                       {u"type"_s, u"integer"_s}};
    QTest::newRow("number")
        << number().withMin(0.5).withDefault(0.75)
        << QJsonObject{{u"title"_s, u"ratio"_s},
                       {u"x-taskdeck-type"_s, u"number"_s},
                       {u"type"_s, u"number"_s},
                       {u"minimum"_s, 0.5},
                       {u"default"_s, 0.75}};
    QTest::newRow("bool")
        << boolean().withDefault(u"yes"_s)
        << QJsonObject{{u"title"_s, u"notify"_s},
                       {u"x-taskdeck-type"_s, u"bool"_s},
                       {u"type"_s, u"boolean"_s},
                       {u"default"_s, true}};
    QTest::newRow("select")
        << select().withTitle(u"Format"_s).withDefault(u"sql"_s)
        << QJsonObject{{u"title"_s, u"Format"_s},
                       {u"x-taskdeck-type"_s, u"select"_s},
                       {u"type"_s, u"string"_s},
                       {u"enum"_s, formatEnum},
                       {u"oneOf"_s, formatOneOf},
                       {u"default"_s, u"sql"_s}};
    QTest::newRow("multiselect")
        << multi().withDefault(u"b,a"_s)
        << QJsonObject{{u"title"_s, u"parts"_s},
                       {u"x-taskdeck-type"_s, u"multiselect"_s},
                       {u"type"_s, u"array"_s},
                       {u"items"_s, QJsonObject{{u"type"_s, u"string"_s},
                                                {u"enum"_s, partEnum},
                                                {u"oneOf"_s, partOneOf}}},
                       {u"uniqueItems"_s, true},
                       {u"default"_s, strings({u"b"_s, u"a"_s})}};
    QTest::newRow("multiselect required needs one item")
        << multi().withRequired()
        << QJsonObject{{u"title"_s, u"parts"_s},
                       {u"x-taskdeck-type"_s, u"multiselect"_s},
                       {u"type"_s, u"array"_s},
                       {u"items"_s, QJsonObject{{u"type"_s, u"string"_s},
                                                {u"enum"_s, partEnum},
                                                {u"oneOf"_s, partOneOf}}},
                       {u"uniqueItems"_s, true},
                       {u"minItems"_s, 1}};
    QTest::newRow("file")
        << file().withDefault(u"/etc/does-not-matter.conf"_s)
        << QJsonObject{{u"title"_s, u"input"_s},
                       {u"x-taskdeck-type"_s, u"file"_s},
                       {u"type"_s, u"string"_s},
                       {u"format"_s, u"path"_s},
                       {u"minLength"_s, 1},
                       {u"default"_s, u"/etc/does-not-matter.conf"_s}};
    QTest::newRow("secret hides its default")
        << secret().withMin(8).withDefault(u"hunter2hunter2"_s)
        << QJsonObject{{u"title"_s, u"password"_s},
                       {u"x-taskdeck-type"_s, u"secret"_s},
                       {u"type"_s, u"string"_s},
                       {u"minLength"_s, 8},
                       {u"writeOnly"_s, true},
                       {u"format"_s, u"password"_s}};
    QTest::newRow("datetime")
        << datetime().withDefault(u"2026-11-26"_s)
        << QJsonObject{{u"title"_s, u"when"_s},
                       {u"x-taskdeck-type"_s, u"datetime"_s},
                       {u"type"_s, u"string"_s},
                       {u"format"_s, u"date-time"_s},
                       {u"default"_s, u"2026-11-26T00:00:00.000Z"_s}};
}

void TestField::schemaProperty()
{
    QFETCH(Field, field);
    QFETCH(QJsonObject, expected);
    QCOMPARE(json(field.toJsonSchema()), json(expected));
}

void TestField::schemaDocument()
{
    const Fields fields{text(u"a"_s).withRequired(), integer(u"b"_s).withRequired().withDefault(3),
                        boolean(u"c"_s)};
    const QJsonObject schema = fieldsToJsonSchema(fields);

    QCOMPARE(schema.value(u"$schema"_s).toString(),
             u"https://json-schema.org/draft/2020-12/schema"_s);
    QCOMPARE(schema.value(u"type"_s).toString(), u"object"_s);
    QCOMPARE(schema.value(u"additionalProperties"_s), QJsonValue(false));
    // "b" has a default, so a request may leave it out.
    QCOMPARE(json(schema.value(u"required"_s)), json(QJsonArray{u"a"_s}));

    const QJsonObject properties = schema.value(u"properties"_s).toObject();
    QCOMPARE(properties.keys(), (QStringList{u"a"_s, u"b"_s, u"c"_s}));
    for (const Field &f : fields)
        QCOMPARE(json(properties.value(f.key).toObject()), json(f.toJsonSchema()));
    QCOMPARE(schema.size(), 5);
}

void TestField::schemaDocumentWithoutFields()
{
    const QJsonObject schema = fieldsToJsonSchema({});
    QVERIFY(schema.value(u"properties"_s).isObject());
    QVERIFY(schema.value(u"properties"_s).toObject().isEmpty());
    QVERIFY(schema.value(u"required"_s).isArray());
    QVERIFY(schema.value(u"required"_s).toArray().isEmpty());
    QCOMPARE(schema.value(u"additionalProperties"_s), QJsonValue(false));
}

void TestField::redact_data()
{
    QTest::addColumn<QJsonObject>("args");
    QTest::addColumn<QJsonObject>("expected");

    QTest::newRow("secrets replaced, others kept")
        << QJsonObject{{u"password"_s, u"hunter2"_s}, {u"token"_s, 1234}, {u"user"_s, u"ann"_s},
                       {u"other"_s, u"x"_s}}
        << QJsonObject{{u"password"_s, u"********"_s}, {u"token"_s, u"********"_s},
                       {u"user"_s, u"ann"_s}, {u"other"_s, u"x"_s}};
    QTest::newRow("absent secret stays absent")
        << QJsonObject{{u"user"_s, u"ann"_s}} << QJsonObject{{u"user"_s, u"ann"_s}};
    QTest::newRow("null secret stays null")
        << QJsonObject{{u"password"_s, QJsonValue::Null}}
        << QJsonObject{{u"password"_s, QJsonValue::Null}};
}

void TestField::redact()
{
    QFETCH(QJsonObject, args);
    QFETCH(QJsonObject, expected);
    const Fields fields{secret(), secret(u"token"_s), text(u"user"_s)};
    QCOMPARE(json(redactSecrets(fields, args)), json(expected));
}

void TestField::utf8Rule_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<int>("offset");
    QTest::newRow("empty") << QByteArray() << -1;
    QTest::newRow("ascii") << QByteArray("plain") << -1;
    QTest::newRow("two to four bytes") << QByteArray("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") << -1;
    QTest::newRow("latin-1") << QByteArray("caf\xE9") << 3;
    QTest::newRow("lone continuation") << QByteArray("a\x80") << 1;
    QTest::newRow("overlong slash") << QByteArray("\xC0\xAF") << 0;
    QTest::newRow("overlong three bytes") << QByteArray("ab\xE0\x80\xAF") << 2;
    QTest::newRow("surrogate") << QByteArray("\xED\xA0\x80") << 0;
    QTest::newRow("past U+10FFFF") << QByteArray("x\xF4\x90\x80\x80") << 1;
    QTest::newRow("cut short at the end") << QByteArray("ok\xE2\x82") << 2;
    QTest::newRow("0xFF") << QByteArray("\xFF") << 0;
}

void TestField::utf8Rule()
{
    QFETCH(QByteArray, bytes);
    QFETCH(int, offset);
    QCOMPARE(invalidUtf8Offset(bytes), qsizetype(offset));
    // The same verdict as Qt's strict decoder.
    QStringDecoder strict(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    const QString decoded = strict.decode(bytes);
    QCOMPARE(strict.hasError(), offset >= 0);
    if (offset >= 0) {
        QCOMPARE(invalidUtf8Text(bytes), u"byte 0x%1 at offset %2"_s
                 .arg(QString::number(quint8(bytes[offset]), 16).toUpper()).arg(offset));
    } else {
        QCOMPARE(invalidUtf8Text(bytes), QString());
        QCOMPARE(decoded.toUtf8(), bytes);
    }
}

QTEST_GUILESS_MAIN(TestField)
#include "tst_field.moc"
