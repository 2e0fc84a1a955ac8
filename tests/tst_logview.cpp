// SPDX-License-Identifier: MIT
// The log pane through its real widgets: ANSI colours and styles against the samples of real
// tools (and aha's rendering of them), carriage returns, find, follow-tail, the bounded view,
// stream marks, copy and the theme switch.

#include <QApplication>
#include <QClipboard>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QScrollBar>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTest>
#include <QTextBlock>
#include <QTextDocument>
#include <QToolButton>
#include <QWheelEvent>

#include "ansi.h"
#include "findbar.h"
#include "logview.h"
#include "theme.h"

using namespace Qt::StringLiterals;
using namespace taskdeck;
using namespace taskdeck::ui;

namespace {

constexpr qint64 kTime = 1767225600000; // 2026-01-01T00:00:00Z

QString dataPath(const QString &name)
{
    return QStringLiteral(TASKDECK_TEST_DATA_DIR) + u"/ansi/"_s + name;
}

QByteArray readData(const QString &name)
{
    QFile file(dataPath(name));
    if (!file.open(QIODevice::ReadOnly))
        qFatal("cannot read %s", qPrintable(file.fileName()));
    return file.readAll();
}

/*! The sample's lines as a run would log them (split at \n, no trailing empty line). */
LogLines sampleLines(const QString &name, LogStream stream = LogStream::Out)
{
    QStringList texts = QString::fromUtf8(readData(name)).split(u'\n');
    if (!texts.isEmpty() && texts.constLast().isEmpty())
        texts.removeLast();
    LogLines lines;
    for (const QString &text : std::as_const(texts)) {
        LogLine line;
        line.number = lines.size() + 1;
        line.seq = line.number;
        line.timeMs = kTime + line.number * 1000;
        line.stream = stream;
        line.text = text;
        lines.append(line);
    }
    return lines;
}

LogLines numbered(int from, int count, LogStream stream = LogStream::Out)
{
    LogLines lines;
    lines.reserve(count);
    for (int i = from; i < from + count; ++i) {
        LogLine line;
        line.number = i;
        line.seq = i;
        line.timeMs = kTime + i;
        line.stream = stream;
        line.text = u"line %1"_s.arg(i);
        lines.append(line);
    }
    return lines;
}

LogLine oneLine(const QString &text, LogStream stream = LogStream::Out)
{
    LogLine line;
    line.timeMs = kTime;
    line.stream = stream;
    line.text = text;
    return line;
}

QTextDocument *documentOf(const LogView &view)
{
    return view.textEdit()->document();
}

/*! Waits until the view has laid out every line it was given. */
bool settle(const LogView &view)
{
    return QTest::qWaitFor([&view] { return view.pendingLineCount() == 0; }, 10000);
}

/*! The format of the character at \a pos of the document. */
QTextCharFormat formatAt(QTextDocument *doc, int pos)
{
    const QTextBlock block = doc->findBlock(pos);
    for (auto it = block.begin(); !it.atEnd(); ++it) {
        const QTextFragment fragment = it.fragment();
        if (pos >= fragment.position() && pos < fragment.position() + fragment.length())
            return fragment.charFormat();
    }
    return {};
}

/*!
 * The format over the \a occurrence-th \a needle in the document; fails the test when the
 * needle is missing or its characters do not share one format.
 */
QTextCharFormat formatOf(QTextDocument *doc, const QString &needle, int occurrence = 0)
{
    const QString text = doc->toPlainText();
    qsizetype at = -1;
    for (int i = 0; i <= occurrence; ++i) {
        at = text.indexOf(needle, at + 1);
        if (at < 0) {
            qWarning("not in the document: %s", qPrintable(needle));
            return {};
        }
    }
    const QTextCharFormat first = formatAt(doc, int(at));
    for (qsizetype i = at + 1; i < at + needle.size(); ++i) {
        if (formatAt(doc, int(i)) != first) {
            qWarning("\"%s\" changes format at %lld", qPrintable(needle), i - at);
            return {};
        }
    }
    return first;
}

QColor fg(const QTextCharFormat &f)
{
    return f.hasProperty(QTextFormat::ForegroundBrush) ? f.foreground().color() : QColor();
}

QColor bg(const QTextCharFormat &f)
{
    return f.hasProperty(QTextFormat::BackgroundBrush) ? f.background().color() : QColor();
}

bool isBold(const QTextCharFormat &f)
{
    return f.fontWeight() == QFont::Bold;
}

/*! aha's colours: the number each span shows, to its #rrggbb (or named) colour. */
QHash<int, QString> ahaColours(const QString &html)
{
    QHash<int, QString> colours;
    static const QRegularExpression span(u"<span style=\"[^\"]*color:([#0-9a-z]+);\">\\s*(\\d+)</span>"_s);
    for (const QRegularExpressionMatch &m : span.globalMatch(html))
        colours.insert(m.captured(2).toInt(), m.captured(1));
    return colours;
}

/*! The foreground of every fragment whose text is a number: number to colour. */
QHash<int, QColor> numberColours(QTextDocument *doc)
{
    QHash<int, QColor> colours;
    for (QTextBlock block = doc->begin(); block.isValid(); block = block.next()) {
        for (auto it = block.begin(); !it.atEnd(); ++it) {
            bool ok = false;
            const int n = it.fragment().text().trimmed().toInt(&ok);
            if (ok)
                colours.insert(n, fg(it.fragment().charFormat()));
        }
    }
    return colours;
}

} // namespace

class LogViewTest final : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        applyTheme(*qApp, Theme::Light);
    }

    void init()
    {
        applyTheme(*qApp, Theme::Light);
    }

    void noEscapesInText_data()
    {
        QTest::addColumn<QString>("file");
        const QStringList files = QDir(dataPath(QString())).entryList({u"*.txt"_s});
        QVERIFY(files.size() >= 8);
        for (const QString &file : files)
            QTest::newRow(qPrintable(file)) << file;
    }

    void noEscapesInText()
    {
        QFETCH(QString, file);
        LogView view;
        const LogLines lines = sampleLines(file);
        view.appendLines(lines);
        QVERIFY(settle(view));
        QCOMPARE(documentOf(view)->blockCount(), lines.size());
        const QString text = documentOf(view)->toPlainText();
        for (const QChar c : text)
            QVERIFY2(c.unicode() >= 0x20 || c == u'\n' || c == u'\t', qPrintable(u"control U+%1 in %2"_s.arg(int(c.unicode()), 4, 16, QChar(u'0')).arg(text)));
        QVERIFY(!text.contains(u"[0m"_s));
        QVERIFY(!text.contains(u"[K"_s));
        QCOMPARE(view.lineCount(), lines.size());
    }

    void styles()
    {
        LogView view;
        view.appendLines(sampleLines(u"styles.txt"_s));
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        const AnsiPalette palette = AnsiPalette::forPalette(view.palette());
        QVERIFY(!palette.isDark());

        QVERIFY(isBold(formatOf(doc, u"bold"_s)));
        QVERIFY(!fg(formatOf(doc, u"bold"_s)).isValid());
        const QTextCharFormat dim = formatOf(doc, u"dim"_s);
        QVERIFY(!isBold(dim));
        QVERIFY(fg(dim).isValid()); // a text colour faded towards the background
        QVERIFY(fg(dim).lightness() > view.palette().color(QPalette::Text).lightness());
        QVERIFY(formatOf(doc, u"italic"_s).fontItalic());
        QVERIFY(formatOf(doc, u"underline"_s).fontUnderline());
        const QTextCharFormat inverse = formatOf(doc, u"inverse"_s);
        QCOMPARE(fg(inverse), view.palette().color(QPalette::Base));
        QCOMPARE(bg(inverse), view.palette().color(QPalette::Text));
        QVERIFY(formatOf(doc, u"strike"_s).fontStrikeOut());
        QVERIFY(!formatOf(doc, u"strike"_s).fontUnderline());

        // aha: bold red, then (22) red only, then (39) plain.
        const QTextCharFormat boldRed = formatOf(doc, u"bold red"_s);
        QVERIFY(isBold(boldRed));
        QCOMPARE(fg(boldRed), palette.indexed(1));
        const QTextCharFormat redOnly = formatOf(doc, u" red only"_s);
        QVERIFY(!isBold(redOnly));
        QCOMPARE(fg(redOnly), palette.indexed(1));
        QVERIFY(!fg(formatOf(doc, u" plain"_s)).isValid());

        QCOMPARE(fg(formatOf(doc, u"bright red"_s)), palette.indexed(9));
        const QTextCharFormat whiteOnBlue = formatOf(doc, u"white on blue"_s);
        QCOMPARE(fg(whiteOnBlue), palette.indexed(15));
        QCOMPARE(bg(whiteOnBlue), palette.indexed(4));
        // aha: color:#ff8700 (208); the background 236 is xterm's grey #303030 (aha's own
        // grey ramp says #2a2a2a).
        const QTextCharFormat c256 = formatOf(doc, u"256 on 256"_s);
        QCOMPARE(fg(c256), QColor(0xff, 0x87, 0x00));
        QCOMPARE(bg(c256), QColor(0x30, 0x30, 0x30));
        const QTextCharFormat after = formatOf(doc, u" after m"_s);
        QVERIFY(!fg(after).isValid());
        QVERIFY(!bg(after).isValid());
        QVERIFY(!isBold(after));
    }

    void palette256()
    {
        LogView view;
        view.appendLines(sampleLines(u"palette-256.txt"_s));
        QVERIFY(settle(view));
        const QHash<int, QColor> ours = numberColours(documentOf(view));
        const QHash<int, QString> aha = ahaColours(QString::fromUtf8(readData(u"palette-256.aha.html"_s)));
        QCOMPARE(ours.size(), 256);
        QCOMPARE(aha.size(), 256);
        const AnsiPalette palette = AnsiPalette::forPalette(view.palette());
        for (int n = 0; n < 16; ++n) // the themed base colours
            QCOMPARE(ours.value(n), palette.indexed(n));
        for (int n = 16; n < 232; ++n) // the colour cube, exactly as aha has it
            QCOMPARE(ours.value(n).name(), aha.value(n));
        for (int n = 232; n < 256; ++n) { // greys: xterm's ramp, within a few levels of aha's
            const QColor a(aha.value(n));
            QVERIFY2(std::abs(ours.value(n).red() - a.red()) <= 10, qPrintable(QString::number(n)));
            QCOMPARE(ours.value(n).red(), ours.value(n).blue());
        }
        QCOMPARE(ours.value(196), QColor(255, 0, 0));
        QCOMPARE(ours.value(21), QColor(0, 0, 255));
    }

    void truecolor()
    {
        LogView view;
        view.appendLines(sampleLines(u"truecolor.txt"_s));
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        static const QRegularExpression bgSpan(u"background-color:(#[0-9a-f]{6});\"> </span>"_s);
        QStringList expected;
        for (const QRegularExpressionMatch &m : bgSpan.globalMatch(QString::fromUtf8(readData(u"truecolor.aha.html"_s))))
            expected << m.captured(1);
        QCOMPARE(expected.size(), 32);
        const QTextBlock first = doc->firstBlock();
        QCOMPARE(first.text(), QString(32, u' '));
        for (int i = 0; i < 32; ++i)
            QCOMPARE(bg(formatAt(doc, first.position() + i)).name(), expected[i]);
        const QTextCharFormat orange = formatOf(doc, u"true colour orange"_s);
        QCOMPARE(fg(orange), QColor(0xff, 0x80, 0x00));
        QVERIFY(!bg(orange).isValid());
    }

    void gccDiagnostics()
    {
        LogView view;
        view.appendLines(sampleLines(u"gcc-diagnostics.txt"_s));
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        const AnsiPalette palette = AnsiPalette::forPalette(view.palette());
        QCOMPARE(doc->firstBlock().text(), u"bad.c: In function \u2018main\u2019:"_s);
        const QTextCharFormat file = formatOf(doc, u"bad.c:2:11:"_s);
        QVERIFY(isBold(file));
        QVERIFY(!fg(file).isValid());
        const QTextCharFormat warning = formatOf(doc, u"warning: "_s);
        QVERIFY(isBold(warning));
        QCOMPARE(fg(warning), palette.indexed(5)); // aha: purple
        QCOMPARE(fg(formatOf(doc, u"-Wint-conversion"_s)), palette.indexed(5));
        const QTextCharFormat error = formatOf(doc, u"error: "_s);
        QVERIFY(isBold(error));
        QCOMPARE(fg(error), palette.indexed(1)); // aha: red
        QCOMPARE(fg(formatOf(doc, u"note: "_s)), palette.indexed(6)); // aha: teal
        // ESC[m resets: the text after a coloured part is plain.
        const QTextCharFormat plain = formatOf(doc, u"makes integer from pointer"_s);
        QVERIFY(!isBold(plain));
        QVERIFY(!fg(plain).isValid());
        QVERIFY(isBold(formatOf(doc, u"char *"_s)));
    }

    void lsColor()
    {
        LogView view;
        view.appendLines(sampleLines(u"ls-color.txt"_s));
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        const AnsiPalette palette = AnsiPalette::forPalette(view.palette());
        // aha: bold, red on black.
        for (const QString &name : {u"broken"_s, u"missing"_s}) {
            const QTextCharFormat f = formatOf(doc, name);
            QVERIFY(isBold(f));
            QCOMPARE(fg(f), palette.indexed(1));
            QCOMPARE(bg(f), palette.indexed(0));
        }
        const QTextCharFormat dir = formatOf(doc, u"dir"_s);
        QVERIFY(isBold(dir));
        QCOMPARE(fg(dir), palette.indexed(4));
        QCOMPARE(fg(formatOf(doc, u"link"_s)), palette.indexed(6));
        const QTextCharFormat pipe = formatOf(doc, u"pipe"_s);
        QVERIFY(!isBold(pipe));
        QCOMPARE(fg(pipe), palette.indexed(3));
        QCOMPARE(bg(pipe), palette.indexed(0));
        QCOMPARE(fg(formatOf(doc, u"script.sh"_s)), palette.indexed(2));
        const QTextCharFormat file = formatOf(doc, u"file.txt"_s);
        QVERIFY(!isBold(file));
        QVERIFY(!fg(file).isValid());
        QCOMPARE(doc->findBlockByNumber(1).text(),
                 u"lrwxrwxrwx 1 root root    7 Jan  1 00:00 broken -> missing"_s);
    }

    void carriageReturns()
    {
        LogView view;
        view.appendLines(sampleLines(u"cr-progress.txt"_s));
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        QCOMPARE(doc->blockCount(), 2);
        QCOMPARE(doc->findBlockByNumber(0).text(), u"downloading [####################] 100%"_s);
        QCOMPARE(doc->findBlockByNumber(1).text(), u"done  "_s);
    }

    void parserRules_data()
    {
        QTest::addColumn<QString>("raw");
        QTest::addColumn<QString>("text");
        QTest::newRow("plain") << u"just text"_s << u"just text"_s;
        QTest::newRow("cursor hide") << u"\x1b[?25lhidden cursor\x1b[?25h"_s << u"hidden cursor"_s;
        QTest::newRow("osc title bel") << u"\x1b]0;my title\x07" u"after"_s << u"after"_s;
        QTest::newRow("osc link st") << u"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ end"_s << u"link end"_s;
        QTest::newRow("clear screen") << u"\x1b[2J\x1b[Hhome"_s << u"home"_s;
        QTest::newRow("cursor up") << u"a\x1b[5Ab"_s << u"ab"_s;
        QTest::newRow("charset") << u"\x1b(Bline"_s << u"line"_s;
        QTest::newRow("unterminated") << u"text\x1b[31"_s << u"text"_s;
        QTest::newRow("bell") << u"ding\x07!"_s << u"ding!"_s;
        QTest::newRow("cr overwrite") << u"step 1\rstep 2\rdone  "_s << u"done  "_s;
        QTest::newRow("cr shorter") << u"abcdef\rXY"_s << u"XYcdef"_s;
        QTest::newRow("cr at end") << u"complete\r"_s << u"complete"_s;
        QTest::newRow("cr erase") << u"50%\r\x1b[Kdone"_s << u"done"_s;
        QTest::newRow("backspace") << u"ab\bc"_s << u"ac"_s;
        QTest::newRow("tab kept") << u"a\tb"_s << u"a\tb"_s;
    }

    void parserRules()
    {
        QFETCH(QString, raw);
        QFETCH(QString, text);
        AnsiParser parser;
        const AnsiLine line = parser.parseLine(raw);
        QCOMPARE(line.text, text);
        QCOMPARE(stripAnsi(raw), text);
        int covered = 0;
        for (const AnsiSpan &span : line.spans) {
            QCOMPARE(span.start, covered);
            covered += span.length;
        }
        QVERIFY(line.spans.isEmpty() || covered == line.text.size());
    }

    void stateCarriesAcrossLines()
    {
        LogView view;
        view.appendLines({oneLine(u"\x1b[32mgreen starts"_s), oneLine(u"still green"_s),
                          oneLine(u"\x1b[0mplain again"_s), oneLine(u"\x1b[1;4mbold"_s),
                          oneLine(u"\x1b[24mno underline"_s)});
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        const AnsiPalette palette = AnsiPalette::forPalette(view.palette());
        QCOMPARE(fg(formatOf(doc, u"still green"_s)), palette.indexed(2));
        QVERIFY(!fg(formatOf(doc, u"plain again"_s)).isValid());
        QVERIFY(formatOf(doc, u"bold"_s).fontUnderline());
        const QTextCharFormat noUnderline = formatOf(doc, u"no underline"_s);
        QVERIFY(!noUnderline.fontUnderline());
        QVERIFY(isBold(noUnderline));
    }

    void streamsAreMarked()
    {
        LogView view;
        view.appendLines({oneLine(u"normal output"_s), oneLine(u"something failed"_s, LogStream::Err),
                          oneLine(u"retrying in 2 s"_s, LogStream::System),
                          oneLine(u"\x1b[32mgreen on stderr\x1b[0m tail"_s, LogStream::Err)});
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        const AnsiPalette palette = AnsiPalette::forPalette(view.palette());
        const QTextBlock out = doc->findBlockByNumber(0);
        const QTextBlock err = doc->findBlockByNumber(1);
        const QTextBlock system = doc->findBlockByNumber(2);
        QCOMPARE(err.blockFormat().intProperty(LogView::StreamProperty), int(LogStream::Err));
        QVERIFY(err.blockFormat().hasProperty(QTextFormat::BackgroundBrush));
        QVERIFY(err.blockFormat().background().color() != view.palette().color(QPalette::Base));
        QVERIFY(!out.blockFormat().hasProperty(QTextFormat::BackgroundBrush));
        QVERIFY(!system.blockFormat().hasProperty(QTextFormat::BackgroundBrush));
        QCOMPARE(fg(formatOf(doc, u"something failed"_s)), palette.indexed(1));
        QVERIFY(!fg(formatOf(doc, u"normal output"_s)).isValid());
        const QTextCharFormat muted = formatOf(doc, u"retrying in 2 s"_s);
        QVERIFY(muted.fontItalic());
        QVERIFY(fg(muted).isValid());
        QVERIFY(fg(muted) != view.palette().color(QPalette::Text));
        // An ANSI colour wins over the stream's default; the rest keeps the stream's colour.
        QCOMPARE(fg(formatOf(doc, u"green on stderr"_s)), palette.indexed(2));
        QCOMPARE(fg(formatOf(doc, u" tail"_s)), palette.indexed(1));
    }

    void timestamps()
    {
        LogView view;
        LogLine line = oneLine(u"with a time"_s);
        line.timeMs = kTime + 3723456; // 01:02:03.456 UTC
        view.appendLines({line});
        QVERIFY(settle(view));
        QCOMPARE(documentOf(view)->firstBlock().text(), u"with a time"_s);
        view.setShowTimestamps(true);
        QVERIFY(settle(view));
        const QString time = QDateTime::fromMSecsSinceEpoch(line.timeMs).toLocalTime().toString(u"hh:mm:ss.zzz"_s);
        QCOMPARE(documentOf(view)->firstBlock().text(), time + u" with a time"_s);
        const QTextCharFormat timeFormat = formatOf(documentOf(view), time);
        QVERIFY(fg(timeFormat).isValid());
        QVERIFY(fg(timeFormat) != view.palette().color(QPalette::Text));
        view.setShowTimestamps(false);
        QVERIFY(settle(view));
        QCOMPARE(documentOf(view)->firstBlock().text(), u"with a time"_s);
    }

    void findThroughTheBar()
    {
        LogView view;
        view.resize(700, 700);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        LogLines lines;
        for (int i = 1; i <= 24; ++i)
            lines.append(oneLine(i % 4 == 0 ? u"line %1 has an Error here, and error there"_s.arg(i)
                                            : u"line %1 is fine"_s.arg(i)));
        view.appendLines(lines);
        QVERIFY(settle(view));
        QPlainTextEdit *edit = view.textEdit();
        edit->setFocus();
        QVERIFY(!view.isFindOpen());
        QTest::keyClick(edit, Qt::Key_F, Qt::ControlModifier | Qt::ShiftModifier);
        QVERIFY(view.isFindOpen());
        auto *bar = view.findChild<FindBar *>();
        QVERIFY(bar);
        QTest::keyClicks(bar->field(), u"error"_s);
        QCOMPARE(view.matchCount(), 12); // 6 lines, twice each, case-insensitive
        QCOMPARE(view.currentMatch(), 1);
        QCOMPARE(view.findStatusText(), u"1 of 12"_s);
        QCOMPARE(edit->textCursor().selectedText(), u"Error"_s);
        QCOMPARE(edit->textCursor().block().text(), u"line 4 has an Error here, and error there"_s);
        // Every match in view is highlighted (all of them fit).
        QCOMPARE(edit->extraSelections().size(), qsizetype(view.matchCount()));

        QTest::keyClick(bar->field(), Qt::Key_Return);
        QCOMPARE(view.currentMatch(), 2);
        QCOMPARE(edit->textCursor().selectedText(), u"error"_s);
        QTest::keyClick(bar->field(), Qt::Key_F3);
        QCOMPARE(view.currentMatch(), 3);
        QCOMPARE(edit->textCursor().block().text(), u"line 8 has an Error here, and error there"_s);
        QTest::keyClick(bar->field(), Qt::Key_Return, Qt::ShiftModifier);
        QCOMPARE(view.currentMatch(), 2);
        QTest::keyClick(bar->field(), Qt::Key_Return, Qt::ShiftModifier);
        QTest::keyClick(bar->field(), Qt::Key_Return, Qt::ShiftModifier);
        QCOMPARE(view.currentMatch(), 12); // wrapped back to the last
        QCOMPARE(view.findStatusText(), u"12 of 12"_s);
        QCOMPARE(edit->textCursor().block().text(), u"line 24 has an Error here, and error there"_s);
        view.findNext();
        QCOMPARE(view.currentMatch(), 1); // and forward to the first

        view.setFindCaseSensitive(true);
        QCOMPARE(view.matchCount(), 6);
        QCOMPARE(view.findStatusText().section(u' ', -1), u"6"_s);
        view.setFindText(u"no such thing"_s);
        QCOMPARE(view.matchCount(), 0);
        QCOMPARE(view.currentMatch(), 0);
        QCOMPARE(view.findStatusText(), u"No matches"_s);
        QVERIFY(edit->extraSelections().isEmpty());

        QTest::keyClick(bar->field(), Qt::Key_Escape);
        QVERIFY(!view.isFindOpen());
        QVERIFY(edit->extraSelections().isEmpty());
    }

    void findCountsLinesArrivingLater()
    {
        LogView view;
        view.appendLines({oneLine(u"needle one"_s)});
        QVERIFY(settle(view));
        view.openFind();
        view.setFindText(u"needle"_s);
        QCOMPARE(view.matchCount(), 1);
        view.appendLines({oneLine(u"hay"_s), oneLine(u"needle two"_s)});
        QTRY_COMPARE_WITH_TIMEOUT(view.matchCount(), 2, 5000);
        QCOMPARE(view.currentMatch(), 1); // the selected match stays selected
    }

    void followTail()
    {
        LogView view;
        view.resize(600, 300);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QSignalSpy following(&view, &LogView::followingChanged);
        QScrollBar *bar = view.textEdit()->verticalScrollBar();
        auto *jump = view.findChild<QToolButton *>(u"jumpToEnd"_s);
        QVERIFY(jump);

        view.appendLines(numbered(1, 500));
        QVERIFY(settle(view));
        QVERIFY(view.isFollowing());
        QVERIFY(bar->maximum() > 0);
        QTRY_COMPARE(bar->value(), bar->maximum());
        QVERIFY(jump->isHidden());

        // The user scrolls up: following stops and the view stays where they put it.
        QWidget *viewport = view.textEdit()->viewport();
        const QPointF inside(viewport->width() / 2.0, viewport->height() / 2.0);
        QWheelEvent wheel(inside, viewport->mapToGlobal(inside), QPoint(), QPoint(0, 120 * 5),
                          Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
        QApplication::sendEvent(viewport, &wheel);
        QVERIFY(bar->value() < bar->maximum());
        QVERIFY(!view.isFollowing());
        bar->triggerAction(QAbstractSlider::SliderPageStepSub);
        QVERIFY(!view.isFollowing());
        QCOMPARE(following.size(), 1);
        QCOMPARE(following.last().at(0).toBool(), false);
        QVERIFY(jump->isVisible());
        const int top = bar->value();
        const QString topText = view.textEdit()->cursorForPosition(QPoint(2, 2)).block().text();
        view.appendLines(numbered(501, 500));
        QVERIFY(settle(view));
        QCOMPARE(documentOf(view)->blockCount(), 1000);
        QCOMPARE(bar->value(), top);
        QCOMPARE(view.textEdit()->cursorForPosition(QPoint(2, 2)).block().text(), topText);
        QVERIFY(!view.isFollowing());

        // Back at the bottom: following again, and new lines keep it there.
        bar->triggerAction(QAbstractSlider::SliderToMaximum);
        QVERIFY(view.isFollowing());
        QCOMPARE(following.last().at(0).toBool(), true);
        QTRY_VERIFY(jump->isHidden());
        view.appendLines(numbered(1001, 200));
        QVERIFY(settle(view));
        QTRY_COMPARE(bar->value(), bar->maximum());
        QCOMPARE(view.textEdit()->cursorForPosition(QPoint(2, view.textEdit()->viewport()->height() - 4)).block().text(),
                 u"line 1200"_s);

        // The button resumes following.
        bar->triggerAction(QAbstractSlider::SliderToMinimum);
        QVERIFY(!view.isFollowing());
        QTRY_VERIFY(jump->isVisible());
        QTest::mouseClick(jump, Qt::LeftButton);
        QVERIFY(view.isFollowing());
        QCOMPARE(bar->value(), bar->maximum());

        // So does End (and Ctrl+End).
        bar->triggerAction(QAbstractSlider::SliderPageStepSub);
        QVERIFY(!view.isFollowing());
        QTest::keyClick(view.textEdit(), Qt::Key_End);
        QVERIFY(view.isFollowing());
        QCOMPARE(bar->value(), bar->maximum());
        bar->triggerAction(QAbstractSlider::SliderPageStepSub);
        QTest::keyClick(view.textEdit(), Qt::Key_End, Qt::ControlModifier);
        QVERIFY(view.isFollowing());

        // The API too.
        view.setFollowing(false);
        QVERIFY(!view.isFollowing());
        view.setFollowing(true);
        QCOMPARE(bar->value(), bar->maximum());
    }

    void boundedView()
    {
        LogView view;
        view.setMaximumLines(100);
        QSignalSpy fullLog(&view, &LogView::fullLogRequested);
        QVERIFY(view.hiddenNotice().isEmpty());
        for (int batch = 0; batch < 10; ++batch) {
            view.appendLines(numbered(batch * 100 + 1, 100));
            if (batch % 3 == 0)
                QVERIFY(settle(view));
        }
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        QCOMPARE(doc->blockCount(), 100);
        QCOMPARE(doc->firstBlock().text(), u"line 901"_s);
        QCOMPARE(doc->lastBlock().text(), u"line 1000"_s);
        QCOMPARE(view.lineCount(), 1000);
        QCOMPARE(view.hiddenLineCount(), 900);
        QVERIFY2(view.hiddenNotice().contains(u"900 earlier lines are not shown"_s), qPrintable(view.hiddenNotice()));
        QVERIFY(view.hiddenNotice().contains(u"Open full log"_s));
        auto *label = view.findChild<QLabel *>(u"hiddenLines"_s);
        QVERIFY(label);
        QVERIFY(label->isVisibleTo(&view));
        Q_EMIT label->linkActivated(u"full"_s);
        QCOMPARE(fullLog.size(), 1);

        // One batch larger than the view: only its tail is ever laid out.
        view.appendLines(numbered(1001, 5000));
        QVERIFY(settle(view));
        QCOMPARE(doc->blockCount(), 100);
        QCOMPARE(doc->firstBlock().text(), u"line 5901"_s);
        QCOMPARE(doc->lastBlock().text(), u"line 6000"_s);
        QCOMPARE(view.hiddenLineCount(), 5900);

        view.setMaximumLines(10);
        QVERIFY(settle(view));
        QCOMPARE(doc->blockCount(), 10);
        QCOMPARE(doc->firstBlock().text(), u"line 5991"_s);

        view.clear();
        QCOMPARE(view.lineCount(), 0);
        QVERIFY(view.hiddenNotice().isEmpty());
        QCOMPARE(doc->toPlainText(), QString());
    }

    void floodShowsNewestFirstThenFillsIn()
    {
        LogView view;
        view.resize(600, 300);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        LogLines lines = numbered(1, 50000);
        for (qsizetype i = 0; i < lines.size(); i += 7)
            lines[i].stream = LogStream::Err;
        view.appendLines(lines);
        // One flush lays out far fewer than 20,000 lines (at microseconds a line), and the
        // first one shows the newest.
        QTRY_VERIFY(documentOf(view)->blockCount() > 1);
        QCOMPARE(documentOf(view)->lastBlock().text(), u"line 50000"_s);
        QVERIFY(view.pendingLineCount() > 0);
        QVERIFY(settle(view));
        QTextDocument *doc = documentOf(view);
        QCOMPARE(doc->blockCount(), 20000);
        int number = 30001;
        for (QTextBlock block = doc->begin(); block.isValid(); block = block.next(), ++number) {
            QCOMPARE(block.text(), u"line %1"_s.arg(number));
            const bool err = (number - 1) % 7 == 0;
            QCOMPARE(block.blockFormat().intProperty(LogView::StreamProperty) == int(LogStream::Err), err);
        }
        QVERIFY(view.isFollowing());
        QScrollBar *bar = view.textEdit()->verticalScrollBar();
        QCOMPARE(bar->value(), bar->maximum());
        QCOMPARE(view.hiddenLineCount(), 30000);
    }

    void copyIsPlainText()
    {
        LogView view;
        view.appendLines({oneLine(u"\x1b[1;31merror:\x1b[0m disk \x1b[4mfull\x1b[0m"_s), oneLine(u"second"_s)});
        QVERIFY(settle(view));
        QPlainTextEdit *edit = view.textEdit();
        edit->selectAll();
        QTest::keyClick(edit, Qt::Key_C, Qt::ControlModifier);
        QClipboard *clipboard = QGuiApplication::clipboard();
        QCOMPARE(clipboard->text(), u"error: disk full\nsecond"_s);
        QVERIFY(!clipboard->mimeData()->hasHtml());
        clipboard->clear();
        view.copyAll();
        QCOMPARE(clipboard->text(), u"error: disk full\nsecond\n"_s);
    }

    void themeSwitchRerenders()
    {
        LogView view;
        view.appendLines(sampleLines(u"styles.txt"_s));
        QVERIFY(settle(view));
        const QColor lightRed = fg(formatOf(documentOf(view), u"bold red"_s));
        QCOMPARE(lightRed, AnsiPalette::light().indexed(1));
        applyTheme(*qApp, Theme::Dark);
        QTRY_COMPARE(fg(formatOf(documentOf(view), u"bold red"_s)), AnsiPalette::dark().indexed(1));
        QVERIFY(settle(view));
        QCOMPARE(documentOf(view)->blockCount(), 2);
        QVERIFY(isBold(formatOf(documentOf(view), u"bold red"_s)));
        applyTheme(*qApp, Theme::Light);
        QTRY_COMPARE(fg(formatOf(documentOf(view), u"bold red"_s)), lightRed);
    }

    void screenshots()
    {
        const QString dir = QStringLiteral(TASKDECK_SCREENSHOT_DIR);
        QVERIFY(QDir().mkpath(dir));
        for (const Theme theme : {Theme::Light, Theme::Dark}) {
            applyTheme(*qApp, theme);
            LogView view;
            view.resize(1000, 720);
            view.setShowTimestamps(true);
            LogLines lines;
            for (const QString &file : {u"styles.txt"_s, u"gcc-diagnostics.txt"_s, u"ls-color.txt"_s,
                                        u"grep-color.txt"_s, u"git-log-graph.txt"_s, u"cr-progress.txt"_s,
                                        u"truecolor.txt"_s, u"palette-256.txt"_s})
                lines += sampleLines(file);
            lines.insert(3, oneLine(u"warning: this line came on stderr"_s, LogStream::Err));
            lines.insert(4, oneLine(u"Attempt 2 of 3 starts"_s, LogStream::System));
            view.appendLines(lines);
            view.show();
            QVERIFY(QTest::qWaitForWindowExposed(&view));
            QVERIFY(settle(view));
            view.setFollowing(false);
            view.textEdit()->verticalScrollBar()->setValue(0);
            view.openFind();
            view.setFindText(u"error"_s);
            QVERIFY(view.matchCount() > 0);
            const QString path = dir + u"/logview-"_s + themeName(theme) + u".png"_s;
            QVERIFY(view.grab().save(path));
            QVERIFY(QFileInfo(path).size() > 0);
        }
        applyTheme(*qApp, Theme::Light);
    }
};

QTEST_MAIN(LogViewTest)
#include "tst_logview.moc"
