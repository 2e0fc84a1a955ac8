// SPDX-License-Identifier: MIT
#pragma once

#include "ansi.h"
#include "run.h"

#include <QList>
#include <QTextFormat>
#include <QTimer>
#include <QWidget>

#include <deque>

class QLabel;
class QPlainTextEdit;
class QTextCursor;
class QToolButton;

namespace taskdeck::ui {

class FindBar;
class LogTextEdit;

/*!
 * The terminal-like log pane of a run: ANSI colours and styles, stderr and system lines
 * marked, optional timestamps, follow-tail with a "Jump to end" button, a find bar and copy.
 *
 * Lines given to appendLines() are parsed at once (the ANSI state carries from line to line)
 * and queued; a short timer moves them into the text in chunks of bounded cost, so the event
 * loop stays live however fast lines come. The pane holds at most maximumLines() lines (the
 * queue included): older ones are dropped, a bar says how many and offers the full log
 * (fullLogRequested()). Lines that would scroll out before they were ever shown are dropped
 * from the queue rather than laid out. While lines come faster than they can be laid out and
 * the pane follows, each flush shows a screenful of the newest lines; the older held lines
 * are filled in above them once the flood is over (pendingLineCount() counts them).
 *
 * \code
 * auto *view = new LogView(parent);
 * Following f = engine.follow(runId, {.after = 0});
 * connect(f.handle.get(), &RunHandle::log, view, &LogView::appendLines);
 * connect(view, &LogView::fullLogRequested, this, [this] { openFullLog(); });
 * \endcode
 */
class LogView final : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(LogView)

public:
    /*! The block property (an int, a LogStream) that marks the blocks of stderr lines. */
    static constexpr int StreamProperty = QTextFormat::UserProperty + 1;

    explicit LogView(QWidget *parent = nullptr);
    ~LogView() override;

    /*! Queues \a lines for display; they appear within one flush interval. */
    void appendLines(const taskdeck::LogLines &lines);
    /*! Empties the pane and resets the ANSI state and the counters. */
    void clear();
    /*! Lines received since construction or clear(), shown or not. */
    qint64 lineCount() const { return m_received; }
    /*! Lines received that are no longer held (older than the maximumLines() last). */
    qint64 hiddenLineCount() const;
    /*! Lines received but not yet in the text. */
    qsizetype pendingLineCount() const;

    int maximumLines() const { return m_maxLines; }
    /*! Holds at most \a lines lines (at least 1; default 20,000); drops the oldest beyond. */
    void setMaximumLines(int lines);

    bool showTimestamps() const { return m_showTimestamps; }
    /*! Shows each line's local time (hh:mm:ss.zzz) before it, in a muted colour. */
    void setShowTimestamps(bool show);

    bool isFollowing() const { return m_following; }
    /*! Following keeps the newest line in view as lines arrive; true scrolls to the end. */
    void setFollowing(bool following);

    /*! Opens the find bar and focuses its field (Ctrl+Shift+F in the pane). */
    void openFind();
    /*! Closes the find bar and removes the highlights (Esc). */
    void closeFind();
    bool isFindOpen() const;
    /*! Searches for \a text (as typed in the find bar) and selects the first match. */
    void setFindText(const QString &text);
    void setFindCaseSensitive(bool sensitive);
    /*! Selects the next match, wrapping to the first after the last (Enter, F3). */
    void findNext();
    /*! Selects the previous match, wrapping to the last (Shift+Enter, Shift+F3). */
    void findPrevious();
    int matchCount() const { return int(m_matches.size()); }
    /*! 1-based number of the selected match, 0 when none is selected. */
    int currentMatch() const { return m_currentMatch + 1; }
    /*! What the find bar says: "3 of 17", "No matches". */
    QString findStatusText() const;
    /*! The notice above the lines when older ones were dropped; empty when none were. */
    QString hiddenNotice() const;

    /*! Copies the selection as plain text (Ctrl+C). */
    void copy();
    /*! Copies every line the pane holds as plain text. */
    void copyAll();

    /*! The text widget, for tests and for the window's actions. */
    QPlainTextEdit *textEdit() const;

Q_SIGNALS:
    void followingChanged(bool following);
    /*! The user asked for the lines the pane no longer holds. */
    void fullLogRequested();

protected:
    void changeEvent(QEvent *event) override;
    bool eventFilter(QObject *watched, QEvent *event) override;
    void resizeEvent(QResizeEvent *event) override;

private:
    /*! A line as parsed on arrival, kept so the pane can render it again. */
    struct ShownLine
    {
        AnsiLine ansi;
        qint64 timeMs = 0;
        LogStream stream = LogStream::Out;
    };

    void scheduleFlush();
    void flush();
    void removeStaleBlocks();
    void insertLine(QTextCursor &cursor, const ShownLine &line, bool first);
    void rebuildFormats();
    void rerender();
    void updateHiddenBar();
    void placeJumpButton();
    void onScrolled(int value);
    void scrollToEnd();
    void setFollowingState(bool following);
    void recomputeMatches();
    void selectMatch(int index);
    void updateMatchHighlights();
    void updateFindStatus();
    qint64 firstLineIndex() const { return m_received - qint64(m_lines.size()); }
    /*! The index among all lines of the text's first block (stale ones included). */
    qint64 docBaseLine() const { return firstLineIndex() + m_docFirst - m_docStale; }
    bool dropOldest(qsizetype count);

    struct Match
    {
        qint64 line = 0; //!< index among all lines received
        int column = 0;
        int length = 0;
    };

    LogTextEdit *m_edit = nullptr;
    FindBar *m_findBar = nullptr;
    QWidget *m_hiddenBar = nullptr;
    QLabel *m_hiddenLabel = nullptr;
    QToolButton *m_jumpButton = nullptr;
    QTimer m_flushTimer;
    QTimer m_matchTimer;

    AnsiParser m_parser;
    AnsiPalette m_palette = AnsiPalette::light();
    // The lines held, oldest first. m_lines[m_docFirst, m_docFirst + m_docLines) are in the
    // text, after its first m_docStale blocks (due for removal); those before m_docFirst wait
    // to be filled in above, those after to be appended.
    std::deque<ShownLine> m_lines;
    qsizetype m_docFirst = 0;
    qsizetype m_docLines = 0;
    qsizetype m_docStale = 0;
    qint64 m_received = 0;
    int m_maxLines = 20000;
    bool m_showTimestamps = false;
    bool m_following = true;
    bool m_scrolling = false; // our own scroll changes, not the user's

    QTextCharFormat m_outFormat;
    QTextCharFormat m_errFormat;
    QTextCharFormat m_systemFormat;
    QTextCharFormat m_timeFormat;
    QTextBlockFormat m_plainBlock;
    QTextBlockFormat m_errBlock;
    double m_costPerLineUs = 20; // measured as lines are laid out
    bool m_rerenderQueued = false;

    QString m_findText;
    bool m_findCaseSensitive = false;
    QList<Match> m_matches;
    int m_currentMatch = -1;
};

} // namespace taskdeck::ui
