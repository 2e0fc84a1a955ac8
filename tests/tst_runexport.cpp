// SPDX-License-Identifier: MIT
// The run exports: each log line encoded byte for byte as QJsonDocument writes it, and
// whole exports read page by page.
#include "runexport.h"

#include <QBuffer>
#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QTest>

using namespace Qt::StringLiterals;
using namespace taskdeck;

namespace {

// What the exports wrote before the encoder: a QJsonObject per line, through QJsonDocument.
QByteArray referenceJson(const LogLine &line)
{
    return QJsonDocument(line.toJson()).toJson(QJsonDocument::Compact);
}

QByteArray referenceCsv(const LogLine &line)
{
    return QByteArray::number(line.number) + ',' + csvField(line.toJson().value(u"time"_s).toString()) + ','
        + csvField(logStreamName(line.stream)) + ',' + csvField(line.text) + "\r\n";
}

LogLine makeLine(qint64 number, qint64 timeMs, LogStream stream, const QString &text)
{
    return LogLine{number, timeMs, stream, text};
}

// A reader over \a lines that hands them out \a pageSize at a time, as the store does.
LogPageReader pagesOf(const LogLines &lines, qsizetype pageSize)
{
    return [lines, pageSize](qint64 fromLine) {
        LogLines page;
        for (const LogLine &line : lines) {
            if (line.number >= fromLine && page.size() < pageSize)
                page.append(line);
        }
        return page;
    };
}

} // namespace

class TestRunExport : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void everyCodeUnitAsQJsonDocumentWritesIt();
    void trickyTextAsQJsonDocumentWritesIt_data();
    void trickyTextAsQJsonDocumentWritesIt();
    void timesAsQJsonDocumentWritesThem_data();
    void timesAsQJsonDocumentWritesThem();
    void csvRecords();
    void wholeExportsPageByPage();
    void writeFailureIsReported();
};

void TestRunExport::everyCodeUnitAsQJsonDocumentWritesIt()
{
    // Each UTF-16 code unit alone (lone surrogates included), between two letters.
    LogLineEncoder encoder;
    const qint64 t = 1764151786686;
    int mismatches = 0;
    for (int unit = 0; unit <= 0xffff; ++unit) {
        QString text = u"a"_s;
        text.append(QChar(char16_t(unit)));
        text.append(u'b');
        const LogLine line = makeLine(unit + 1, t + unit, LogStream(unit % 3), text);
        QByteArray encoded;
        encoder.appendJson(encoded, line);
        if (encoded != referenceJson(line) && ++mismatches <= 5)
            qWarning("U+%04x: %s != %s", unit, encoded.constData(), referenceJson(line).constData());
    }
    QCOMPARE(mismatches, 0);
}

void TestRunExport::trickyTextAsQJsonDocumentWritesIt_data()
{
    QTest::addColumn<QString>("text");
    QTest::newRow("empty") << QString();
    QTest::newRow("quotes and backslashes") << u"say \"hi\" \\ C:\\path\\"_s;
    QTest::newRow("control characters") << QString::fromUtf8("\x01\x08\t\n\x0b\x0c\r\x1b[31mred\x1b[0m\x1f\x7f");
    QTest::newRow("NUL") << QString(QChar(u'\0')) + u"after"_s;
    QTest::newRow("pair") << QString::fromUcs4(U"smile \U0001F600 and \U0010FFFF");
    const QChar high(char16_t(0xd83d));
    const QChar low(char16_t(0xde00));
    QTest::newRow("two highs then a low") << QString(high) + high + low;
    QTest::newRow("reversed pair") << QString(low) + high;
    QTest::newRow("high at the end") << u"end "_s + high;
    QTest::newRow("low at the start") << QString(low) + u" start"_s;
    QTest::newRow("every width") << u"a é € 𝄞 ü ✓ \u2028 \ufeff \uffff"_s;
    QTest::newRow("long") << u"x\"y"_s.repeated(5000);
}

void TestRunExport::trickyTextAsQJsonDocumentWritesIt()
{
    QFETCH(QString, text);
    LogLineEncoder encoder;
    for (LogStream stream : {LogStream::Out, LogStream::Err, LogStream::System}) {
        const LogLine line = makeLine(42, 1764151786686, stream, text);
        QByteArray encoded;
        encoder.appendJson(encoded, line);
        QCOMPARE(encoded, referenceJson(line));
        QByteArray record;
        encoder.appendCsv(record, line);
        QCOMPARE(record, referenceCsv(line));
    }
}

void TestRunExport::timesAsQJsonDocumentWritesThem_data()
{
    QTest::addColumn<qint64>("timeMs");
    QTest::addColumn<qint64>("number");
    QTest::newRow("epoch") << qint64(0) << qint64(1);
    QTest::newRow("a millisecond before") << qint64(-1) << qint64(2);
    QTest::newRow("999 ms before") << qint64(-999) << qint64(3);
    QTest::newRow("a second before") << qint64(-1000) << qint64(4);
    QTest::newRow("1001 ms before") << qint64(-1001) << qint64(5);
    QTest::newRow("1969") << qint64(-86400000LL * 200 - 1) << qint64(6);
    QTest::newRow("last ms of a second") << qint64(1764151786999) << qint64(7);
    QTest::newRow("first ms of a second") << qint64(1764151787000) << qint64(8);
    QTest::newRow("the last ms of 9999") << qint64(253402300799999) << qint64(9);
    QTest::newRow("year 10000") << qint64(253402300800000) << qint64(10);
    QTest::newRow("year 1") << qint64(-62135596800000) << qint64(11);
    QTest::newRow("a big line number") << qint64(1764151786686) << qint64(9007199254740993LL);
}

void TestRunExport::timesAsQJsonDocumentWritesThem()
{
    QFETCH(qint64, timeMs);
    QFETCH(qint64, number);
    const LogLine line = makeLine(number, timeMs, LogStream::Out, u"t"_s);
    // A fresh encoder, and one that has cached the second before and after.
    LogLineEncoder fresh;
    LogLineEncoder warm;
    for (qint64 around : {timeMs - 1, timeMs + 1, timeMs}) {
        QByteArray ignored;
        warm.appendJson(ignored, makeLine(1, around, LogStream::Out, u"t"_s));
    }
    for (LogLineEncoder *encoder : {&fresh, &warm}) {
        QByteArray encoded;
        encoder->appendJson(encoded, line);
        QCOMPARE(encoded, referenceJson(line));
        QByteArray record;
        encoder->appendCsv(record, line);
        QCOMPARE(record, referenceCsv(line));
    }
}

void TestRunExport::csvRecords()
{
    LogLineEncoder encoder;
    QByteArray out;
    encoder.appendCsv(out, makeLine(1, 0, LogStream::Err, u"plain"_s));
    encoder.appendCsv(out, makeLine(2, 1, LogStream::System, u"a, \"b\"\r\nc"_s));
    QCOMPARE(out, QByteArray("1,1970-01-01T00:00:00.000Z,err,plain\r\n"
                             "2,1970-01-01T00:00:00.001Z,system,\"a, \"\"b\"\"\r\nc\"\r\n"));
}

void TestRunExport::wholeExportsPageByPage()
{
    // Enough lines for many output chunks, on several pages, the seconds changing on the way.
    LogLines lines;
    const qint64 t0 = 1764151786000;
    for (qint64 n = 1; n <= 20000; ++n) {
        lines.append(makeLine(n, t0 + n * 7, n % 10 == 0 ? LogStream::Err : LogStream::Out,
                              n % 97 == 0 ? u"quote \" comma , newline \n é %1"_s.arg(n) : u"line %1"_s.arg(n)));
    }
    const QJsonObject run{{u"id"_s, u"r1"_s}, {u"task"_s, u"t"_s}, {u"status"_s, u"succeeded"_s}};

    QBuffer json;
    QVERIFY(json.open(QIODevice::WriteOnly));
    QString error;
    QVERIFY2(writeRunJson(&json, run, pagesOf(lines, 1000), &error), qPrintable(error));
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(json.data(), &parseError);
    QVERIFY2(parseError.error == QJsonParseError::NoError, qPrintable(parseError.errorString()));
    QJsonArray expectedLog;
    for (const LogLine &line : std::as_const(lines))
        expectedLog.append(line.toJson());
    QJsonObject expected = run;
    expected.insert(u"log"_s, expectedLog);
    QCOMPARE(document.object(), expected);

    QBuffer csv;
    QVERIFY(csv.open(QIODevice::WriteOnly));
    QVERIFY2(writeLogCsv(&csv, pagesOf(lines, 1000), &error), qPrintable(error));
    QByteArray expectedCsv = "n,time,stream,text\r\n";
    for (const LogLine &line : std::as_const(lines))
        expectedCsv += referenceCsv(line);
    QCOMPARE(csv.data().size(), expectedCsv.size());
    QVERIFY(csv.data() == expectedCsv);

    // An empty log.
    QBuffer empty;
    QVERIFY(empty.open(QIODevice::WriteOnly));
    QVERIFY(writeRunJson(&empty, run, pagesOf({}, 1000), &error));
    QCOMPARE(QJsonDocument::fromJson(empty.data()).object().value(u"log"_s).toArray().size(), 0);
}

void TestRunExport::writeFailureIsReported()
{
    LogLines lines;
    for (qint64 n = 1; n <= 5000; ++n)
        lines.append(makeLine(n, 0, LogStream::Out, u"some text to fill a chunk %1"_s.arg(n)));
    QBuffer readOnly;
    QVERIFY(readOnly.open(QIODevice::ReadOnly));
    QString error;
    QVERIFY(!writeLogCsv(&readOnly, pagesOf(lines, 1000), &error));
    QVERIFY(!error.isEmpty());
    error.clear();
    QVERIFY(!writeRunJson(&readOnly, QJsonObject{{u"id"_s, u"r"_s}}, pagesOf(lines, 1000), &error));
    QVERIFY(!error.isEmpty());
}

QTEST_GUILESS_MAIN(TestRunExport)
#include "tst_runexport.moc"
