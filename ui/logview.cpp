// SPDX-License-Identifier: MIT
#include "logview.h"

#include "findbar.h"

#include <QApplication>
#include <QClipboard>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QLocale>
#include <QMenu>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QScrollBar>
#include <QTextEdit>
#include <QTextBlock>
#include <QTextCursor>
#include <QTextDocument>
#include <QTextDocumentFragment>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <optional>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

constexpr int kFirstFlushMs = 30;   // lines show within this of arriving
constexpr int kFlushBudgetMs = 8;   // the most one flush may hold the event loop, roughly
constexpr int kStreamFlushMs = 40;  // between flushes while lines come faster than that
constexpr int kMatchDelayMs = 120;  // recount matches at most this often while lines arrive
constexpr int kMaxMatches = 100000; // a search for "e" in 20,000 lines stays bounded

QColor mixColor(const QColor &a, const QColor &b, double t)
{
    return QColor::fromRgbF(float(a.redF() * (1 - t) + b.redF() * t),
                            float(a.greenF() * (1 - t) + b.greenF() * t),
                            float(a.blueF() * (1 - t) + b.blueF() * t));
}

bool isEndKey(const QKeyEvent *key)
{
    return key->key() == Qt::Key_End
           && (key->modifiers() & ~Qt::KeypadModifier) <= Qt::ControlModifier;
}

} // namespace

/*! The text widget: copies plain text only (the colours stay in the pane). */
class LogTextEdit final : public QPlainTextEdit
{
public:
    using QPlainTextEdit::QPlainTextEdit;

protected:
    QMimeData *createMimeDataFromSelection() const override
    {
        auto *mime = new QMimeData;
        mime->setText(textCursor().selection().toPlainText());
        return mime;
    }
};

LogView::LogView(QWidget *parent)
    : QWidget(parent)
    , m_edit(new LogTextEdit(this))
    , m_findBar(new FindBar(this))
    , m_hiddenBar(new QWidget(this))
    , m_hiddenLabel(new QLabel(m_hiddenBar))
    , m_jumpButton(new QToolButton(m_edit))
{
    m_edit->setReadOnly(true);
    m_edit->setUndoRedoEnabled(false);
    m_edit->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_edit->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_edit->setContextMenuPolicy(Qt::CustomContextMenu);
    m_edit->installEventFilter(this);
    m_edit->viewport()->installEventFilter(this);
    setFocusProxy(m_edit);

    m_hiddenLabel->setObjectName(u"hiddenLines"_s);
    m_hiddenLabel->setTextFormat(Qt::RichText);
    m_hiddenLabel->setTextInteractionFlags(Qt::LinksAccessibleByMouse | Qt::LinksAccessibleByKeyboard);
    auto *hiddenLayout = new QHBoxLayout(m_hiddenBar);
    hiddenLayout->setContentsMargins(6, 2, 6, 2);
    hiddenLayout->addWidget(m_hiddenLabel, 1);
    m_hiddenBar->setAutoFillBackground(true);
    m_hiddenBar->setBackgroundRole(QPalette::AlternateBase);
    m_hiddenBar->hide();
    connect(m_hiddenLabel, &QLabel::linkActivated, this, &LogView::fullLogRequested);

    m_jumpButton->setObjectName(u"jumpToEnd"_s);
    m_jumpButton->setText(tr("Jump to end"));
    m_jumpButton->setArrowType(Qt::DownArrow);
    m_jumpButton->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    m_jumpButton->setToolTip(tr("Follow the newest lines (End)"));
    m_jumpButton->setCursor(Qt::ArrowCursor);
    m_jumpButton->hide();
    connect(m_jumpButton, &QToolButton::clicked, this, [this] { setFollowing(true); });

    m_findBar->hide();
    connect(m_findBar, &FindBar::textChanged, this, &LogView::setFindText);
    connect(m_findBar, &FindBar::caseSensitivityChanged, this, &LogView::setFindCaseSensitive);
    connect(m_findBar, &FindBar::nextRequested, this, &LogView::findNext);
    connect(m_findBar, &FindBar::previousRequested, this, &LogView::findPrevious);
    connect(m_findBar, &FindBar::closeRequested, this, &LogView::closeFind);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addWidget(m_hiddenBar);
    layout->addWidget(m_edit, 1);
    layout->addWidget(m_findBar);

    QScrollBar *bar = m_edit->verticalScrollBar();
    connect(bar, &QScrollBar::valueChanged, this, &LogView::onScrolled);
    // Paging and the wheel move the text with the bar's signals blocked: a scroll shows up as
    // an update with a vertical offset.
    connect(m_edit, &QPlainTextEdit::updateRequest, this, [this, bar](const QRect &, int dy) {
        if (dy != 0)
            onScrolled(bar->value());
    });
    connect(bar, &QScrollBar::rangeChanged, this, [this] {
        if (m_following)
            scrollToEnd();
    });
    connect(m_edit, &QPlainTextEdit::customContextMenuRequested, this, [this](const QPoint &pos) {
        QMenu *menu = m_edit->createStandardContextMenu(pos);
        menu->setAttribute(Qt::WA_DeleteOnClose);
        menu->addAction(tr("Copy all"), this, &LogView::copyAll);
        menu->addSeparator();
        menu->addAction(tr("Find..."), QKeySequence(u"Ctrl+Shift+F"_s), this, &LogView::openFind);
        QAction *times = menu->addAction(tr("Show timestamps"));
        times->setCheckable(true);
        times->setChecked(m_showTimestamps);
        connect(times, &QAction::toggled, this, &LogView::setShowTimestamps);
        menu->popup(m_edit->viewport()->mapToGlobal(pos));
    });

    m_flushTimer.setSingleShot(true);
    connect(&m_flushTimer, &QTimer::timeout, this, &LogView::flush);
    m_matchTimer.setSingleShot(true);
    m_matchTimer.setInterval(kMatchDelayMs);
    connect(&m_matchTimer, &QTimer::timeout, this, [this] {
        recomputeMatches();
        updateMatchHighlights();
        updateFindStatus();
    });

    rebuildFormats();
}

LogView::~LogView() = default;

QPlainTextEdit *LogView::textEdit() const
{
    return m_edit;
}

qint64 LogView::hiddenLineCount() const
{
    return firstLineIndex();
}

qsizetype LogView::pendingLineCount() const
{
    return qsizetype(m_lines.size()) - m_docLines;
}

void LogView::appendLines(const LogLines &lines)
{
    if (lines.isEmpty())
        return;
    // A batch longer than the view: its head only moves the ANSI state along.
    const qsizetype skip = std::max<qsizetype>(0, lines.size() - m_maxLines);
    for (qsizetype i = 0; i < skip; ++i)
        m_parser.parseLine(lines[i].text);
    for (qsizetype i = skip; i < lines.size(); ++i)
        m_lines.push_back({m_parser.parseLine(lines[i].text), lines[i].timeMs, lines[i].stream});
    m_received += lines.size();
    // Bounded: the oldest go, from the text if they were shown, or before they ever are.
    dropOldest(qsizetype(m_lines.size()) - m_maxLines);
    scheduleFlush();
}

void LogView::clear()
{
    m_flushTimer.stop();
    m_lines.clear();
    m_docFirst = 0;
    m_docLines = 0;
    m_docStale = 0;
    m_received = 0;
    m_parser.reset();
    m_edit->clear();
    m_matches.clear();
    m_currentMatch = -1;
    updateHiddenBar();
    updateFindStatus();
}

void LogView::setMaximumLines(int lines)
{
    m_maxLines = std::max(1, lines);
    if (dropOldest(qsizetype(m_lines.size()) - m_maxLines)) {
        const bool was = m_scrolling;
        m_scrolling = true;
        removeStaleBlocks();
        m_scrolling = was;
        updateHiddenBar();
    }
}

void LogView::setShowTimestamps(bool show)
{
    if (show == m_showTimestamps)
        return;
    m_showTimestamps = show;
    rerender();
}

bool LogView::dropOldest(qsizetype count)
{
    if (count <= 0)
        return false;
    m_lines.erase(m_lines.begin(), m_lines.begin() + count);
    // Lines waiting to be filled in above the text go first, then those in the text.
    const qsizetype above = std::min(count, m_docFirst);
    m_docFirst -= above;
    const qsizetype fromText = std::min(count - above, m_docLines);
    m_docLines -= fromText;
    m_docStale += fromText;
    if (m_docLines == 0)
        m_docFirst = 0;
    return true;
}

void LogView::scheduleFlush()
{
    if (!m_flushTimer.isActive())
        m_flushTimer.start(kFirstFlushMs);
}

void LogView::flush()
{
    QScrollBar *bar = m_edit->verticalScrollBar();
    // Without wrapping, the scroll value is the first visible block: keep that line in view.
    const qint64 topLine = docBaseLine() + bar->value();
    m_scrolling = true;

    // As many lines as fit the time budget, by the cost per line measured so far (the layout
    // happens at endEditBlock(), so it cannot be timed line by line).
    QElapsedTimer clock;
    clock.start();
    const qsizetype budget = std::clamp<qsizetype>(qsizetype(kFlushBudgetMs * 1000.0 / m_costPerLineUs),
                                                   64, 50000);
    qsizetype newer = qsizetype(m_lines.size()) - m_docFirst - m_docLines;
    const bool jump = m_following && newer > budget;
    if (jump) {
        // More has come than one flush lays out: show a screenful of the newest lines; the
        // ones above them are filled in once the flood is over (or never, if they scroll out
        // before that). So a flood costs a screenful a frame, not every line.
        const int rows = m_edit->viewport()->height() / std::max(1, m_edit->fontMetrics().lineSpacing()) + 2;
        const qsizetype shown = std::min<qsizetype>(budget, std::max(rows, 64));
        m_docStale += m_docLines;
        m_docLines = 0;
        m_docFirst = qsizetype(m_lines.size()) - shown;
        newer = shown;
    }
    removeStaleBlocks();

    qsizetype inserted = 0;
    QTextCursor cursor(m_edit->document());
    cursor.beginEditBlock();
    if (newer > 0) {
        const qsizetype count = std::min(newer, budget);
        cursor.movePosition(QTextCursor::End);
        for (qsizetype i = 0; i < count; ++i) {
            insertLine(cursor, m_lines[size_t(m_docFirst + m_docLines)], m_docLines == 0);
            ++m_docLines;
        }
        inserted += count;
        newer -= count;
    }
    if (!jump && newer == 0 && m_docFirst > 0 && inserted < budget) {
        // Fill in above: a fresh first block, then the older lines before the old first one.
        const qsizetype count = std::min(m_docFirst, budget - inserted);
        cursor.movePosition(QTextCursor::Start);
        const QTextBlockFormat oldFirst = cursor.blockFormat();
        cursor.insertBlock(oldFirst);
        cursor.movePosition(QTextCursor::Start);
        for (qsizetype i = m_docFirst - count; i < m_docFirst; ++i)
            insertLine(cursor, m_lines[size_t(i)], i == m_docFirst - count);
        m_docFirst -= count;
        m_docLines += count;
        inserted += count;
    }
    cursor.endEditBlock();
    if (inserted >= 64) { // small flushes say little about the cost
        const double perLine = double(clock.nsecsElapsed()) / 1000.0 / double(inserted);
        m_costPerLineUs = std::clamp(m_costPerLineUs * 0.5 + perLine * 0.5, 0.2, 1000.0);
    }

    if (m_following)
        bar->setValue(bar->maximum());
    else
        bar->setValue(int(std::clamp<qint64>(topLine - docBaseLine(), 0, bar->maximum())));
    m_scrolling = false;

    updateHiddenBar();
    if (isFindOpen() && !m_findText.isEmpty() && !m_matchTimer.isActive())
        m_matchTimer.start();
    // While lines come faster than they are laid out, flush at a display rate and leave the
    // rest of the time to the run; filling in above goes on at once when nothing newer came.
    if (newer > 0 || jump)
        m_flushTimer.start(kStreamFlushMs);
    else if (m_docFirst > 0)
        m_flushTimer.start(0);
}

void LogView::removeStaleBlocks()
{
    if (m_docStale == 0)
        return;
    if (m_docLines == 0) {
        m_edit->clear();
    } else {
        QTextCursor cut(m_edit->document());
        cut.movePosition(QTextCursor::NextBlock, QTextCursor::KeepAnchor, int(m_docStale));
        cut.removeSelectedText();
        // The block that is now first keeps its own mark.
        cut.setBlockFormat(m_lines.front().stream == LogStream::Err ? m_errBlock : m_plainBlock);
    }
    m_docStale = 0;
}

void LogView::insertLine(QTextCursor &cursor, const ShownLine &line, bool first)
{
    const QTextCharFormat &base = line.stream == LogStream::Err      ? m_errFormat
                                  : line.stream == LogStream::System ? m_systemFormat
                                                                     : m_outFormat;
    if (first) {
        cursor.setBlockFormat(line.stream == LogStream::Err ? m_errBlock : m_plainBlock);
        cursor.setBlockCharFormat(base);
    } else {
        cursor.insertBlock(line.stream == LogStream::Err ? m_errBlock : m_plainBlock, base);
    }
    if (m_showTimestamps) {
        const QString time = QDateTime::fromMSecsSinceEpoch(line.timeMs).toLocalTime().toString(u"hh:mm:ss.zzz"_s);
        cursor.insertText(time + u' ', m_timeFormat);
    }
    if (line.ansi.spans.isEmpty()) {
        cursor.insertText(line.ansi.text, base);
        return;
    }
    for (const AnsiSpan &span : line.ansi.spans)
        cursor.insertText(line.ansi.text.mid(span.start, span.length), m_palette.format(span.style, base));
}

void LogView::rebuildFormats()
{
    const QPalette pal = palette();
    m_palette = AnsiPalette::forPalette(pal);
    const QColor text = pal.color(QPalette::Text);
    const QColor base = pal.color(QPalette::Base);
    const QColor muted = mixColor(text, base, 0.45);
    const QColor red = m_palette.indexed(1);

    m_outFormat = QTextCharFormat();
    m_errFormat = QTextCharFormat();
    m_errFormat.setForeground(red);
    m_systemFormat = QTextCharFormat();
    m_systemFormat.setForeground(muted);
    m_systemFormat.setFontItalic(true);
    m_timeFormat = QTextCharFormat();
    m_timeFormat.setForeground(muted);

    m_plainBlock = QTextBlockFormat();
    m_errBlock = QTextBlockFormat();
    m_errBlock.setBackground(mixColor(base, red, m_palette.isDark() ? 0.16 : 0.09));
    m_errBlock.setProperty(StreamProperty, int(LogStream::Err));
}

void LogView::rerender()
{
    rebuildFormats();
    // Every held line goes back to the queue; the flushes lay it out again in chunks.
    m_docStale += m_docLines;
    m_docLines = 0;
    m_docFirst = 0;
    m_flushTimer.start(0);
}

void LogView::changeEvent(QEvent *event)
{
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::ApplicationPaletteChange) {
        // After the children have their new palettes too.
        if (!m_rerenderQueued) {
            m_rerenderQueued = true;
            QTimer::singleShot(0, this, [this] {
                m_rerenderQueued = false;
                const bool dark = AnsiPalette::forPalette(palette()).isDark();
                if (dark != m_palette.isDark()
                    || palette().color(QPalette::Text) != m_palette.defaultForeground()
                    || palette().color(QPalette::Base) != m_palette.defaultBackground())
                    rerender();
            });
        }
    }
    QWidget::changeEvent(event);
}

void LogView::updateHiddenBar()
{
    const qint64 hidden = hiddenLineCount();
    if (hidden <= 0) {
        m_hiddenBar->hide();
        return;
    }
    const QString link = u"<a href=\"full\">"_s + tr("Open full log").toHtmlEscaped() + u"</a>"_s;
    m_hiddenLabel->setText(hidden == 1 ? tr("1 earlier line is not shown \u2014 %1").arg(link)
                                       : tr("%1 earlier lines are not shown \u2014 %2")
                                             .arg(QLocale().toString(hidden), link));
    m_hiddenBar->show();
}

QString LogView::hiddenNotice() const
{
    return m_hiddenBar->isHidden() ? QString() : m_hiddenLabel->text();
}

void LogView::placeJumpButton()
{
    const QRect area = m_edit->viewport()->geometry();
    const QSize size = m_jumpButton->sizeHint();
    m_jumpButton->setGeometry(area.right() - size.width() - 10, area.bottom() - size.height() - 10,
                              size.width(), size.height());
    m_jumpButton->raise();
}

void LogView::resizeEvent(QResizeEvent *event)
{
    QWidget::resizeEvent(event);
    placeJumpButton();
}

void LogView::onScrolled(int value)
{
    if (isFindOpen() && !m_matches.isEmpty())
        updateMatchHighlights();
    if (m_scrolling)
        return;
    setFollowingState(value >= m_edit->verticalScrollBar()->maximum());
}

void LogView::scrollToEnd()
{
    const bool was = m_scrolling;
    m_scrolling = true;
    QScrollBar *bar = m_edit->verticalScrollBar();
    bar->setValue(bar->maximum());
    m_scrolling = was;
}

void LogView::setFollowing(bool following)
{
    if (following)
        scrollToEnd();
    setFollowingState(following);
}

void LogView::setFollowingState(bool following)
{
    if (following == m_following)
        return;
    m_following = following;
    m_jumpButton->setVisible(!following);
    if (!following)
        placeJumpButton();
    Q_EMIT followingChanged(following);
}

bool LogView::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == m_edit->viewport() && event->type() == QEvent::Resize) {
        placeJumpButton();
        if (isFindOpen())
            updateMatchHighlights();
    }
    if (watched != m_edit)
        return QWidget::eventFilter(watched, event);
    if (event->type() == QEvent::ShortcutOverride || event->type() == QEvent::KeyPress) {
        auto *key = static_cast<QKeyEvent *>(event);
        const bool shift = key->modifiers().testFlag(Qt::ShiftModifier);
        const bool ctrl = key->modifiers().testFlag(Qt::ControlModifier);
        bool ours = true;
        if (key->key() == Qt::Key_F && ctrl && shift) {
            if (event->type() == QEvent::KeyPress)
                openFind();
        } else if (key->key() == Qt::Key_F3) {
            if (event->type() == QEvent::KeyPress)
                shift ? findPrevious() : findNext();
        } else if (key->key() == Qt::Key_Escape && isFindOpen()) {
            if (event->type() == QEvent::KeyPress)
                closeFind();
        } else if (isEndKey(key)) {
            if (event->type() == QEvent::KeyPress)
                setFollowing(true);
        } else if (key->matches(QKeySequence::Copy)) {
            if (event->type() == QEvent::KeyPress)
                copy();
        } else {
            ours = false;
        }
        if (ours) {
            event->accept();
            return true;
        }
    }
    return QWidget::eventFilter(watched, event);
}

void LogView::copy()
{
    m_edit->copy();
}

void LogView::copyAll()
{
    QString all;
    for (const ShownLine &line : m_lines) {
        if (m_showTimestamps)
            all += QDateTime::fromMSecsSinceEpoch(line.timeMs).toLocalTime().toString(u"hh:mm:ss.zzz"_s) + u' ';
        all += line.ansi.text + u'\n';
    }
    QGuiApplication::clipboard()->setText(all);
}

// Find ------------------------------------------------------------------------------------

void LogView::openFind()
{
    m_findBar->show();
    m_findBar->focusField();
    if (!m_findText.isEmpty()) {
        recomputeMatches();
        updateMatchHighlights();
        updateFindStatus();
    }
}

void LogView::closeFind()
{
    m_findBar->hide();
    m_matchTimer.stop();
    m_edit->setExtraSelections({});
    m_edit->setFocus();
}

bool LogView::isFindOpen() const
{
    return !m_findBar->isHidden();
}

void LogView::setFindText(const QString &text)
{
    if (m_findBar->text() != text) {
        m_findBar->setText(text); // comes back here through textChanged
        return;
    }
    m_findText = text;
    m_currentMatch = -1;
    recomputeMatches();
    if (!m_matches.isEmpty()) {
        // The first match from the top of the view on, as a browser's find does.
        const qint64 top = docBaseLine() + m_edit->verticalScrollBar()->value();
        const auto from = std::find_if(m_matches.cbegin(), m_matches.cend(),
                                       [top](const Match &m) { return m.line >= top; });
        selectMatch(from == m_matches.cend() ? 0 : int(from - m_matches.cbegin()));
    } else {
        QTextCursor cursor = m_edit->textCursor();
        cursor.clearSelection();
        m_edit->setTextCursor(cursor);
    }
    updateMatchHighlights();
    updateFindStatus();
}

void LogView::setFindCaseSensitive(bool sensitive)
{
    if (m_findBar->isCaseSensitive() != sensitive) {
        m_findBar->setCaseSensitive(sensitive); // comes back here through the toggle
        return;
    }
    m_findCaseSensitive = sensitive;
    setFindText(m_findText);
}

void LogView::findNext()
{
    if (m_matches.isEmpty())
        return;
    selectMatch(m_currentMatch < 0 ? 0 : int((m_currentMatch + 1) % m_matches.size()));
    updateMatchHighlights();
    updateFindStatus();
}

void LogView::findPrevious()
{
    if (m_matches.isEmpty())
        return;
    const int count = int(m_matches.size());
    selectMatch(m_currentMatch <= 0 ? count - 1 : m_currentMatch - 1);
    updateMatchHighlights();
    updateFindStatus();
}

void LogView::recomputeMatches()
{
    std::optional<Match> current;
    if (m_currentMatch >= 0 && m_currentMatch < m_matches.size())
        current = m_matches[m_currentMatch];
    m_matches.clear();
    m_currentMatch = -1;
    if (m_findText.isEmpty())
        return;
    const Qt::CaseSensitivity cs = m_findCaseSensitive ? Qt::CaseSensitive : Qt::CaseInsensitive;
    const qint64 first = docBaseLine();
    qint64 number = 0;
    for (QTextBlock block = m_edit->document()->begin(); block.isValid(); block = block.next(), ++number) {
        if (number < m_docStale)
            continue;
        if (number >= m_docStale + m_docLines)
            break;
        const QString text = block.text();
        for (qsizetype at = text.indexOf(m_findText, 0, cs); at >= 0;
             at = text.indexOf(m_findText, at + m_findText.size(), cs)) {
            const Match match{first + number, int(at), int(m_findText.size())};
            if (current && match.line == current->line && match.column == current->column)
                m_currentMatch = int(m_matches.size());
            m_matches.append(match);
            if (m_matches.size() >= kMaxMatches)
                return;
        }
    }
}

void LogView::selectMatch(int index)
{
    if (index < 0 || index >= m_matches.size())
        return;
    m_currentMatch = index;
    const Match &match = m_matches[index];
    const QTextBlock block = m_edit->document()->findBlockByNumber(int(match.line - (docBaseLine())));
    if (!block.isValid())
        return;
    QTextCursor cursor(block);
    cursor.setPosition(block.position() + match.column);
    cursor.setPosition(block.position() + match.column + match.length, QTextCursor::KeepAnchor);
    m_edit->setTextCursor(cursor);
    m_edit->ensureCursorVisible();
    m_edit->centerCursor();
}

void LogView::updateMatchHighlights()
{
    QList<QTextEdit::ExtraSelection> selections;
    if (m_matches.isEmpty() || !isFindOpen()) {
        m_edit->setExtraSelections(selections);
        return;
    }
    // Only the visible lines get a highlight: painting thousands of selections is slow.
    const int firstBlock = m_edit->cursorForPosition(QPoint(0, 0)).blockNumber();
    const int lastBlock = m_edit->cursorForPosition(QPoint(0, m_edit->viewport()->height())).blockNumber();
    const qint64 base = docBaseLine();
    const QColor highlight = m_palette.isDark() ? QColor(0x6b, 0x5a, 0x1e) : QColor(0xff, 0xe8, 0x8c);
    const QColor current = m_palette.isDark() ? QColor(0xc7, 0x8a, 0x1b) : QColor(0xff, 0xb3, 0x3a);
    auto it = std::lower_bound(m_matches.cbegin(), m_matches.cend(), base + firstBlock,
                               [](const Match &m, qint64 line) { return m.line < line; });
    for (; it != m_matches.cend() && it->line <= base + lastBlock; ++it) {
        const QTextBlock block = m_edit->document()->findBlockByNumber(int(it->line - base));
        QTextEdit::ExtraSelection selection;
        selection.cursor = QTextCursor(block);
        selection.cursor.setPosition(block.position() + it->column);
        selection.cursor.setPosition(block.position() + it->column + it->length, QTextCursor::KeepAnchor);
        const bool isCurrent = int(it - m_matches.cbegin()) == m_currentMatch;
        selection.format.setBackground(isCurrent ? current : highlight);
        selection.format.setForeground(m_palette.isDark() && !isCurrent ? QColor(Qt::white) : QColor(Qt::black));
        selections.append(selection);
    }
    m_edit->setExtraSelections(selections);
}

void LogView::updateFindStatus()
{
    m_findBar->setStatus(currentMatch(), matchCount());
}

QString LogView::findStatusText() const
{
    return m_findBar->statusText();
}

} // namespace taskdeck::ui
