// SPDX-License-Identifier: MIT
#pragma once

#include <QByteArray>
#include <QHash>
#include <QJsonObject>
#include <QJsonValue>
#include <QList>
#include <QObject>
#include <QString>

#include "taskengine.h"

QT_BEGIN_NAMESPACE
class QEventLoop;
QT_END_NAMESPACE

namespace taskdeck {

class Console;
class EachInput;

/*!
 * One run of a task per line of an input (run --each), reported line by line and summed up
 * at the end.
 *
 * Lines are started as earlier runs start, keeping a few per concurrent run waiting in the
 * engine's queue, and never more than a window of them in the engine at once (finished runs
 * whose finish the history has not committed yet included), so memory stays bounded however
 * long the input, results stream from the first run on, and an interrupt has little left to
 * cancel. Every line is reported once: as the run it became, as invalid (not a JSON object,
 * or arguments the task refused), or, after interrupt(), as skipped.
 *
 * Lives on the thread of the engine's event loop; exec() runs a local event loop.
 */
class EachRun final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(EachRun)

public:
    struct Options
    {
        QString taskKey;
        QJsonObject baseArgs;   //!< the --arg values each line's arguments go over
        RunOptions runOptions;
        bool json = false;      //!< one JSON object per line on stdout, the summary on stderr
        bool showRunIds = false; //!< name each run's id in the plain report
        qsizetype window = 1;   //!< most runs in the engine at once, finished ones not shown yet included
    };

    EachRun(TaskEngine *engine, Console *console, EachInput *input, Options options,
            QObject *parent = nullptr);
    ~EachRun() override;

    /*!
     * Runs every line and prints the report; \a inputName names the input in messages.
     * Returns whether every line ran and succeeded.
     */
    bool exec(const QString &inputName);

    /*!
     * Starts no more lines. The lines of a file not started yet are reported as skipped; a
     * stream is read no further. Canceling the runs in the engine is the caller's part.
     */
    void interrupt();

private:
    struct Entry
    {
        int line = 0;
        QJsonValue input;
        QString outcome; // "invalid" or a run status name
        QString summary; // one line, for the plain report
        bool started = false; // its first attempt began: no longer in the engine's queue
    };

    void feed();
    bool wantMore() const;
    void started(const Run &run);
    bool nextLine(Entry *entry, QJsonObject *args);
    void finished(const Run &run);
    void recordInvalid(Entry entry, const QJsonObject &error);
    void recordSkipped(int line, const QByteArray &text);
    void account(Entry entry, bool succeeded);
    void refreshSoon();
    void printReport();

    TaskEngine *m_engine;
    Console *m_console;
    EachInput *m_input;
    const Options m_options;
    QEventLoop *m_loop = nullptr;
    bool m_interrupted = false;
    bool m_refreshQueued = false;

    const qsizetype m_queueAhead; // most runs waiting in the engine's queue
    qsizetype m_queued = 0;       // runs of m_running not started yet
    QHash<QString, Entry> m_running; // by run id, until the finish is shown
    QList<Entry> m_notSucceeded;     // for the report at the end
    QHash<QString, int> m_counts;    // by outcome
    qint64 m_total = -1;             // non-empty lines, when known up front (a file, on a terminal)
    qint64 m_done = 0;
    // Lines never started, after an interrupt. The plain report names them as one range
    // rather than line by line (they can be most of a long input); JSON gives each its line.
    int m_firstSkipped = 0;
    int m_lastSkipped = 0;
    qsizetype m_skipped = 0;
};

} // namespace taskdeck
