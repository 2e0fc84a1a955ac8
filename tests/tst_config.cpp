// SPDX-License-Identifier: MIT
#include "engineconfig.h"

#include <QTest>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;
using namespace taskdeck;

class TestConfig : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void defaults();
    void validValues_data();
    void validValues();
    void invalidValues_data();
    void invalidValues();
    void flagsBeatEnvironment();
    void durations_data();
    void durations();
    void formatting();
    void booleans();
    void everyOptionDocumented();
};

void TestConfig::defaults()
{
    QString error;
    const auto s = Settings::load(QProcessEnvironment(), {}, &error);
    QVERIFY(s);
    QCOMPARE(s->engine.defaultTimeout, 5min);
    QCOMPARE(s->engine.bufferSize, 1000);
    QVERIFY(s->engine.effectiveMaxConcurrent() >= 1);
    QCOMPARE(s->engine.startRate, 0.0);
    QCOMPARE(s->websocketEnabled, true);
    QCOMPARE(s->retentionDays, 30);
    QCOMPARE(s->logLevel, u"info"_s);
}

void TestConfig::validValues_data()
{
    QTest::addColumn<QString>("variable");
    QTest::addColumn<QString>("value");
    QTest::addColumn<QString>("expected");
    QTest::newRow("max concurrent") << u"TASK_MAX_CONCURRENT"_s << u"3"_s << u"3"_s;
    QTest::newRow("timeout seconds") << u"TASK_TIMEOUT"_s << u"90"_s << u"90000"_s;
    QTest::newRow("timeout 90s") << u"TASK_TIMEOUT"_s << u"90s"_s << u"90000"_s;
    QTest::newRow("timeout 5m") << u"TASK_TIMEOUT"_s << u"5m"_s << u"300000"_s;
    QTest::newRow("timeout 1h") << u"TASK_TIMEOUT"_s << u"1h"_s << u"3600000"_s;
    QTest::newRow("websocket off") << u"TASK_WEBSOCKET_ENABLED"_s << u"false"_s << u"false"_s;
    QTest::newRow("websocket yes") << u"TASK_WEBSOCKET_ENABLED"_s << u"YES"_s << u"true"_s;
    QTest::newRow("buffer") << u"TASK_BUFFER_SIZE"_s << u"50"_s << u"50"_s;
    QTest::newRow("log level") << u"TASK_LOG_LEVEL"_s << u"Debug"_s << u"debug"_s;
    QTest::newRow("retention forever") << u"TASK_RETENTION_DAYS"_s << u"0"_s << u"0"_s;
    QTest::newRow("rate per second") << u"TASK_RATE_LIMIT"_s << u"10/s"_s << u"10"_s;
    QTest::newRow("rate per minute") << u"TASK_RATE_LIMIT"_s << u"120/m"_s << u"2"_s;
    QTest::newRow("rate off") << u"TASK_RATE_LIMIT"_s << u"off"_s << u"0"_s;
    QTest::newRow("rate fraction per second") << u"TASK_RATE_LIMIT"_s << u"0.5/s"_s << u"0.5"_s;
    QTest::newRow("data dir") << u"TASK_DATA_DIR"_s << u"/tmp/x"_s << u"/tmp/x"_s;
}

void TestConfig::validValues()
{
    QFETCH(QString, variable);
    QFETCH(QString, value);
    QFETCH(QString, expected);
    QProcessEnvironment env;
    env.insert(variable, value);
    QString error;
    const auto s = Settings::load(env, {}, &error);
    QVERIFY2(s, qPrintable(error));
    QString got;
    if (variable == u"TASK_MAX_CONCURRENT"_s)
        got = QString::number(s->engine.maxConcurrent);
    else if (variable == u"TASK_TIMEOUT"_s)
        got = QString::number(s->engine.defaultTimeout.count());
    else if (variable == u"TASK_WEBSOCKET_ENABLED"_s)
        got = s->websocketEnabled ? u"true"_s : u"false"_s;
    else if (variable == u"TASK_BUFFER_SIZE"_s)
        got = QString::number(s->engine.bufferSize);
    else if (variable == u"TASK_LOG_LEVEL"_s)
        got = s->logLevel;
    else if (variable == u"TASK_RETENTION_DAYS"_s)
        got = QString::number(s->retentionDays);
    else if (variable == u"TASK_RATE_LIMIT"_s)
        got = QString::number(s->engine.startRate);
    else if (variable == u"TASK_DATA_DIR"_s)
        got = s->dataDir;
    QCOMPARE(got, expected);
}

void TestConfig::invalidValues_data()
{
    QTest::addColumn<QString>("variable");
    QTest::addColumn<QString>("value");
    QTest::newRow("max concurrent zero") << u"TASK_MAX_CONCURRENT"_s << u"0"_s;
    QTest::newRow("max concurrent text") << u"TASK_MAX_CONCURRENT"_s << u"many"_s;
    QTest::newRow("max concurrent huge") << u"TASK_MAX_CONCURRENT"_s << u"99999999999"_s;
    QTest::newRow("timeout words") << u"TASK_TIMEOUT"_s << u"abc"_s;
    QTest::newRow("timeout negative") << u"TASK_TIMEOUT"_s << u"-5"_s;
    QTest::newRow("timeout zero") << u"TASK_TIMEOUT"_s << u"0s"_s;
    QTest::newRow("timeout bad unit") << u"TASK_TIMEOUT"_s << u"5 weeks"_s;
    QTest::newRow("websocket") << u"TASK_WEBSOCKET_ENABLED"_s << u"maybe"_s;
    QTest::newRow("buffer zero") << u"TASK_BUFFER_SIZE"_s << u"0"_s;
    QTest::newRow("log level") << u"TASK_LOG_LEVEL"_s << u"loud"_s;
    QTest::newRow("retention negative") << u"TASK_RETENTION_DAYS"_s << u"-1"_s;
    QTest::newRow("rate") << u"TASK_RATE_LIMIT"_s << u"fast"_s;
    // Only N/s, N/m and off are documented; nothing else is taken.
    QTest::newRow("rate without unit") << u"TASK_RATE_LIMIT"_s << u"2.5"_s;
    QTest::newRow("rate zero") << u"TASK_RATE_LIMIT"_s << u"0"_s;
    QTest::newRow("rate zero per second") << u"TASK_RATE_LIMIT"_s << u"0/s"_s;
    QTest::newRow("rate per hour") << u"TASK_RATE_LIMIT"_s << u"10/h"_s;
    QTest::newRow("rate per sec") << u"TASK_RATE_LIMIT"_s << u"10/sec"_s;
    QTest::newRow("rate per minute spelled") << u"TASK_RATE_LIMIT"_s << u"10/minute"_s;
    QTest::newRow("rate with blanks") << u"TASK_RATE_LIMIT"_s << u"10 / s"_s;
    QTest::newRow("rate negative") << u"TASK_RATE_LIMIT"_s << u"-1/s"_s;
    QTest::newRow("rate exponent") << u"TASK_RATE_LIMIT"_s << u"1e3/s"_s;
    QTest::newRow("data dir empty") << u"TASK_DATA_DIR"_s << u" "_s;
}

void TestConfig::invalidValues()
{
    QFETCH(QString, variable);
    QFETCH(QString, value);
    QProcessEnvironment env;
    env.insert(variable, value);
    QString error;
    QVERIFY(!Settings::load(env, {}, &error));
    // The message names the variable, repeats the value and says what is accepted.
    QVERIFY2(error.startsWith(variable + u'='), qPrintable(error));
    QVERIFY2(error.contains(u'"' + value + u'"'), qPrintable(error));
    QVERIFY2(error.contains(u"expected"_s), qPrintable(error));
}

void TestConfig::flagsBeatEnvironment()
{
    QProcessEnvironment env;
    env.insert(u"TASK_BUFFER_SIZE"_s, u"10"_s);
    env.insert(u"TASK_TIMEOUT"_s, u"abc"_s);
    QString error;
    // A valid flag replaces an invalid variable: only the effective value is checked.
    const auto s = Settings::load(env, {{u"TASK_TIMEOUT"_s, u"2m"_s}}, &error);
    QVERIFY2(s, qPrintable(error));
    QCOMPARE(s->engine.defaultTimeout, 2min);
    QCOMPARE(s->engine.bufferSize, 10);
    QVERIFY(!Settings::load(env, {{u"TASK_BUFFER_SIZE"_s, u"x"_s}, {u"TASK_TIMEOUT"_s, u"1s"_s}}, &error));
    QVERIFY2(error.startsWith(u"--buffer-size=\"x\""_s), qPrintable(error));
}

void TestConfig::durations_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<qint64>("ms");
    QTest::newRow("bare seconds") << u"90"_s << qint64(90000);
    QTest::newRow("fractional") << u"1.5s"_s << qint64(1500);
    QTest::newRow("millis") << u"250ms"_s << qint64(250);
    QTest::newRow("combined") << u"1h30m"_s << qint64(5400000);
    QTest::newRow("spaced") << u" 2m 5s "_s << qint64(125000);
    QTest::newRow("days") << u"1d"_s << qint64(86400000);
    QTest::newRow("upper case") << u"5M"_s << qint64(300000);
    QTest::newRow("empty") << QString() << qint64(-1);
    QTest::newRow("unit only") << u"s"_s << qint64(-1);
    QTest::newRow("junk after") << u"5m later"_s << qint64(-1);
    QTest::newRow("junk before") << u"about 5m"_s << qint64(-1);
    QTest::newRow("zero") << u"0"_s << qint64(-1);
    QTest::newRow("negative") << u"-1m"_s << qint64(-1);
    QTest::newRow("below a millisecond") << u"0.1ms"_s << qint64(-1);
    QTest::newRow("what formatDuration writes") << u"1h 30m 5s"_s << qint64(5405000);
    QTest::newRow("seconds and millis") << u"1s500ms"_s << qint64(1500);
    QTest::newRow("units out of order") << u"1m1h"_s << qint64(-1);
    QTest::newRow("unit twice") << u"1s1s"_s << qint64(-1);
    QTest::newRow("space before the unit") << u"1 s"_s << qint64(-1);
    QTest::newRow("exponent") << u"1e3"_s << qint64(-1);
    QTest::newRow("exponent with a unit") << u"1e3s"_s << qint64(-1);
    QTest::newRow("plus sign") << u"+5"_s << qint64(-1);
}

void TestConfig::durations()
{
    QFETCH(QString, text);
    QFETCH(qint64, ms);
    const auto d = parseDuration(text);
    if (ms < 0) {
        QVERIFY2(!d, qPrintable(QString::number(d ? d->count() : 0)));
    } else {
        QVERIFY(d);
        QCOMPARE(d->count(), ms);
    }
}

void TestConfig::formatting()
{
    QCOMPARE(formatDuration(250ms), u"250ms"_s);
    QCOMPARE(formatDuration(1500ms), u"1.5s"_s);
    QCOMPARE(formatDuration(5400s), u"1h 30m"_s);
    QCOMPARE(formatDuration(125s), u"2m 5s"_s);
}

void TestConfig::booleans()
{
    for (const auto &t : {u"true"_s, u"1"_s, u"Yes"_s, u"ON"_s})
        QCOMPARE(parseBool(t), std::optional<bool>(true));
    for (const auto &f : {u"false"_s, u"0"_s, u"no"_s, u"off"_s})
        QCOMPARE(parseBool(f), std::optional<bool>(false));
    QVERIFY(!parseBool(u"2"_s));
    QVERIFY(!parseBool(QString()));
}

void TestConfig::everyOptionDocumented()
{
    QStringList variables;
    for (const auto &o : Settings::options()) {
        QVERIFY(o.flag.startsWith(u"--"_s));
        QVERIFY(!o.accepted.isEmpty());
        QVERIFY(!o.defaultText.isEmpty());
        variables << o.variable;
    }
    for (const char *v : {"TASK_MAX_CONCURRENT", "TASK_TIMEOUT", "TASK_WEBSOCKET_ENABLED", "TASK_BUFFER_SIZE",
                          "TASK_LOG_LEVEL", "TASK_RETENTION_DAYS"})
        QVERIFY(variables.contains(QString::fromLatin1(v)));
}

QTEST_GUILESS_MAIN(TestConfig)
#include "tst_config.moc"
