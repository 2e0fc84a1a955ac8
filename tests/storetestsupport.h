// SPDX-License-Identifier: MIT
#pragma once
// Rows and log lines made up for the history tests (tst_store, tst_storecontract), and a
// wait for a finished run to be durable; the same for every store.

#include "run.h"
#include "runstore.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QString>
#include <QTest>

#include <atomic>
#include <memory>

namespace testsupport {

using namespace Qt::StringLiterals;

// A run in the given state with the times a run in that state has.
inline taskdeck::Run makeRun(const QString &id, const QString &task, taskdeck::RunStatus status,
                             const QDateTime &queuedAt, const QString &owner = u"1@tst-store.invalid#1"_s)
{
    taskdeck::Run run;
    run.id = id;
    run.task = task;
    run.status = status;
    run.queuedAt = queuedAt;
    run.owner = owner;
    if (status != taskdeck::RunStatus::Queued) {
        run.attempt = 1;
        run.startedAt = queuedAt.addSecs(1);
    }
    if (taskdeck::isTerminal(status))
        run.finishedAt = queuedAt.addSecs(2);
    return run;
}

// Lines numbered from..to, every seventh on stderr; `text` gets the number as %1 (the default
// has a non-ASCII letter, so every round trip checks the encoding too). With seqBase > 0 a
// line's event sequence number is seqBase + its number.
inline taskdeck::LogLines makeLines(qint64 from, qint64 to, const QString &text = u"line %1 ü"_s,
                                    qint64 seqBase = 0)
{
    taskdeck::LogLines lines;
    for (qint64 n = from; n <= to; ++n) {
        taskdeck::LogLine line;
        line.number = n;
        line.timeMs = 1700000000000 + n * 3;
        line.stream = n % 7 == 0 ? taskdeck::LogStream::Err : taskdeck::LogStream::Out;
        line.text = text.arg(n);
        line.seq = seqBase > 0 ? seqBase + n : 0;
        lines << line;
    }
    return lines;
}

// Records a finished run and waits (up to a minute) until the store says it is durable.
inline bool recordFinishedAndWait(taskdeck::IRunStore &store, const taskdeck::Run &run)
{
    auto done = std::make_shared<std::atomic<bool>>(false);
    store.recordFinished(run, [done] { done->store(true); });
    QElapsedTimer timer;
    timer.start();
    while (!done->load() && timer.elapsed() < 60000)
        QTest::qWait(5);
    return done->load();
}

} // namespace testsupport
