// SPDX-License-Identifier: MIT
#include "runview.h"

#include "ui_runview.h"

#include "cancelrun.h"
#include "logview.h"
#include "resultview.h"
#include "runexport.h"
#include "runfollower.h"
#include "runhandle.h"
#include "sqliterunstore.h"
#include "taskengine.h"
#include "taskicons.h"
#include "taskregistry.h"
#include "whendone.h"

#include <QApplication>
#include <QDesktopServices>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QJsonDocument>
#include <QLabel>
#include <QLocale>
#include <QMenu>
#include <QSaveFile>
#include <QStandardPaths>
#include <QStyle>
#include <QThreadPool>
#include <QTimer>
#include <QUrl>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

constexpr int kExportPageLines = 5000;

QString formatTime(const QDateTime &time)
{
    return time.isValid() ? QLocale().toString(time.toLocalTime(), QLocale::ShortFormat)
                          : QString();
}

QByteArray textLine(const LogLine &line)
{
    const char *marker = line.stream == LogStream::Err ? "! "
        : line.stream == LogStream::System            ? "# "
                                                       : "";
    return marker + line.text.toUtf8() + '\n';
}

// Writes the run or its log; runs on a pool thread, reading the history page by page.
QString writeExport(IRunStore *store, const Run &run, const LogLines &memoryLog,
                    RunView::ExportFormat format, const QString &path)
{
    LogPageReader readPage;
    if (store) {
        readPage = [store, id = run.id](qint64 fromLine) {
            return store->readLog(id, fromLine, kExportPageLines);
        };
    } else {
        // No history: what the engine still holds is all there is.
        readPage = [memoryLog](qint64 fromLine) {
            LogLines page;
            for (const LogLine &line : memoryLog) {
                if (line.number >= fromLine && page.size() < kExportPageLines)
                    page.append(line);
            }
            return page;
        };
    }

    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return file.errorString();
    QString error;
    bool ok = true;
    switch (format) {
    case RunView::ExportFormat::Json: {
        QJsonObject object = run.toJson();
        if (store)
            object.insert(u"traceId"_s, store->traceId(run.id));
        ok = writeRunJson(&file, object, readPage, &error);
        break;
    }
    case RunView::ExportFormat::Csv:
        ok = writeLogCsv(&file, readPage, &error);
        break;
    case RunView::ExportFormat::Text:
        for (qint64 from = 1;;) {
            const LogLines page = readPage(from);
            if (page.isEmpty())
                break;
            QByteArray chunk;
            for (const LogLine &line : page)
                chunk += textLine(line);
            if (file.write(chunk) != chunk.size()) {
                ok = false;
                error = file.errorString();
                break;
            }
            from = page.constLast().number + 1;
        }
        break;
    }
    if (!ok) {
        file.cancelWriting();
        return error.isEmpty() ? file.errorString() : error;
    }
    if (!file.commit())
        return file.errorString();
    return QString();
}

} // namespace

QString formatElapsed(qint64 ms)
{
    if (ms < 0)
        return QString();
    const qint64 seconds = ms / 1000;
    const qint64 h = seconds / 3600;
    const qint64 m = (seconds / 60) % 60;
    const qint64 s = seconds % 60;
    if (h > 0)
        return u"%1:%2:%3"_s.arg(h).arg(m, 2, 10, QChar(u'0')).arg(s, 2, 10, QChar(u'0'));
    return u"%1:%2"_s.arg(m).arg(s, 2, 10, QChar(u'0'));
}

QString runStatusText(RunStatus status)
{
    switch (status) {
    case RunStatus::Queued:
        return RunView::tr("Queued");
    case RunStatus::Running:
        return RunView::tr("Running");
    case RunStatus::Retrying:
        return RunView::tr("Waiting to retry");
    case RunStatus::Succeeded:
        return RunView::tr("Succeeded");
    case RunStatus::Failed:
        return RunView::tr("Failed");
    case RunStatus::Canceled:
        return RunView::tr("Canceled");
    case RunStatus::TimedOut:
        return RunView::tr("Timed out");
    case RunStatus::Interrupted:
        return RunView::tr("Interrupted");
    }
    return QString();
}

RunView::RunView(const DesktopServices &services, QWidget *parent)
    : QWidget(parent)
    , m_services(services)
    , m_ui(std::make_unique<Ui::RunView>())
{
    m_ui->setupUi(this);

    m_earlierNotice = new QLabel(this);
    m_earlierNotice->setTextFormat(Qt::RichText);
    m_earlierNotice->setVisible(false);
    m_earlierNotice->setContentsMargins(6, 2, 6, 2);
    connect(m_earlierNotice, &QLabel::linkActivated, this, &RunView::openFullLog);
    m_ui->logLayout->addWidget(m_earlierNotice);
    m_log = new LogView(m_ui->logTab);
    m_ui->logLayout->addWidget(m_log, 1);
    connect(m_log, &LogView::fullLogRequested, this, &RunView::openFullLog);

    m_result = new ResultView(m_ui->resultTab);
    m_ui->resultLayout->addWidget(m_result);

    auto *exportMenu = new QMenu(this);
    exportMenu->addAction(tr("Run as &JSON…"), this, [this] { exportRun(ExportFormat::Json); });
    exportMenu->addAction(tr("Log as &CSV…"), this, [this] { exportRun(ExportFormat::Csv); });
    exportMenu->addAction(tr("Log as &text…"), this, [this] { exportRun(ExportFormat::Text); });
    m_ui->exportButton->setMenu(exportMenu);

    connect(m_ui->cancelButton, &QPushButton::clicked, this, &RunView::cancelRun);
    connect(m_ui->rerunButton, &QPushButton::clicked, this, [this] {
        if (m_run)
            Q_EMIT rerunRequested(*m_run);
    });

    m_ticker = new QTimer(this);
    m_ticker->setInterval(1000);
    connect(m_ticker, &QTimer::timeout, this, &RunView::updateTimes);

    m_ui->cancelButton->setEnabled(false);
    m_ui->rerunButton->setEnabled(false);
    m_ui->exportButton->setEnabled(false);
    m_ui->progressBar->setVisible(false);
}

RunView::~RunView() = default;

QTabWidget *RunView::tabs() const
{
    return m_ui->tabs;
}

void RunView::showRun(const QString &runId)
{
    const quint64 generation = ++m_generation;
    m_handle.reset();
    m_runId = runId;
    m_run.reset();
    m_log->clear();
    m_result->clear();
    m_rateStartDone = -1;
    m_etaMs = -1;
    m_firstShownLine = 1;
    m_earlierNotice->setVisible(false);
    m_ui->titleLabel->setText(tr("Loading run %1…").arg(runId.left(8)));
    m_ui->statusLabel->clear();
    m_ui->statusIcon->clear();

    RunFollower follower(m_services.engine, m_services.store);
    follower.follow(runId, FollowOptions(), this, [this, generation](Following following) {
        if (generation != m_generation)
            return; // another run was asked for meanwhile
        if (!following.handle) {
            showUnknown();
            return;
        }
        if (!following.recentLog.isEmpty())
            m_firstShownLine = following.recentLog.constFirst().number;
        setRun(following.run);
        m_log->appendLines(following.recentLog);
        attach(std::move(following.handle));
        updateEarlierNotice();
    });
}

void RunView::attach(std::unique_ptr<RunHandle> handle)
{
    m_handle = std::move(handle);
    RunHandle *h = m_handle.get();
    connect(h, &RunHandle::queued, this, &RunView::setRun);
    connect(h, &RunHandle::started, this, [this](const Run &run) {
        m_rateStartDone = -1;
        m_etaMs = -1;
        setRun(run);
    });
    connect(h, &RunHandle::retrying, this, &RunView::setRun);
    connect(h, &RunHandle::finished, this, &RunView::setRun);
    connect(h, &RunHandle::progressed, this,
            [this](const Progress &progress, qint64) { updateProgress(progress); });
    connect(h, &RunHandle::log, this, [this](const LogLines &lines) {
        m_log->appendLines(lines);
        if (m_run && !lines.isEmpty())
            m_run->logLines = std::max(m_run->logLines, lines.constLast().number);
    });
    connect(h, &RunHandle::fellBehind, this, [this](qint64) {
        // The pane could not keep up: start again from what the history and engine hold now.
        if (!m_runId.isEmpty())
            showRun(m_runId);
    });
}

void RunView::showUnknown()
{
    m_ui->titleLabel->setText(tr("Run %1 is not known: neither running here nor in the history")
                                  .arg(m_runId));
    m_ui->cancelButton->setEnabled(false);
    m_ui->rerunButton->setEnabled(false);
    m_ui->exportButton->setEnabled(false);
    m_ui->progressBar->setVisible(false);
    m_ticker->stop();
}

void RunView::setRun(const Run &run)
{
    m_run = run;
    QString title = run.task;
    if (m_services.registry) {
        if (const TaskPtr task = m_services.registry->find(run.task); task && !task->title.isEmpty())
            title = task->title;
    }
    const QString muted = palette().color(QPalette::PlaceholderText).name();
    m_ui->titleLabel->setText(u"<b>%1</b> <span style=\"color:%2\">%3</span>"_s
                                  .arg(title.toHtmlEscaped(), muted, run.id.left(8)));
    m_ui->titleLabel->setToolTip(run.id);
    m_ui->statusLabel->setText(runStatusText(run.status));
    m_ui->statusIcon->setPixmap(runStatusIcon(run.status).pixmap(16, 16));
    m_ui->statusIcon->setAccessibleName(runStatusText(run.status));

    const bool active = !run.isFinished();
    m_ui->cancelButton->setEnabled(active);
    m_ui->rerunButton->setEnabled(true);
    m_ui->exportButton->setEnabled(true);
    updateProgress(run.progress);
    m_ui->progressBar->setVisible(active || run.progress.total > 0);
    if (active)
        m_ticker->start();
    else
        m_ticker->stop();
    updateTimes();

    // Result and error tabs
    if (run.result.isUndefined())
        m_result->clear();
    else
        m_result->setResult(run.result);
    m_ui->errorMessage->setText(run.error.message);
    m_ui->errorKind->setText(run.error.kind);
    m_ui->errorAttempts->setText(tr("%1 of %2").arg(run.attempt).arg(run.maxAttempts));
    m_ui->errorDetail->setPlainText(run.error.detail);
    m_ui->tabs->setTabEnabled(m_ui->tabs->indexOf(m_ui->errorTab), !run.error.isEmpty());
    m_ui->tabs->setTabEnabled(m_ui->tabs->indexOf(m_ui->resultTab), !run.result.isUndefined());

    // Details
    m_ui->idValue->setText(run.id);
    m_ui->taskValue->setText(run.task);
    QStringList times;
    times << tr("queued %1").arg(formatTime(run.queuedAt));
    if (run.startedAt.isValid())
        times << tr("started %1").arg(formatTime(run.startedAt));
    if (run.finishedAt.isValid())
        times << tr("finished %1").arg(formatTime(run.finishedAt));
    m_ui->timesValue->setText(times.join(u", "_s));
    m_ui->attemptsValue->setText(tr("%1 of %2").arg(run.attempt).arg(run.maxAttempts));
    m_ui->ownerValue->setText(run.owner);
    m_ui->traceValue->setText(tr("in the JSON export"));
    m_ui->argsValue->setPlainText(
        QString::fromUtf8(QJsonDocument(run.args).toJson(QJsonDocument::Indented)));

    updateEarlierNotice();
    Q_EMIT runChanged(run);
}

void RunView::updateProgress(const Progress &progress)
{
    if (m_run)
        m_run->progress = progress;
    const int percent = progress.percent();
    if (percent < 0) {
        const bool running = m_run && m_run->status == RunStatus::Running;
        m_ui->progressBar->setRange(0, running ? 0 : 100); // busy indicator while running
        m_ui->progressBar->setValue(0);
        m_ui->progressBar->setFormat(progress.message);
    } else {
        m_ui->progressBar->setRange(0, 100);
        m_ui->progressBar->setValue(percent);
        m_ui->progressBar->setFormat(progress.message.isEmpty()
                                         ? u"%p%"_s
                                         : u"%p% · "_s + progress.message);
    }
    // ETA from the rate since the first report of this attempt.
    if (progress.total > 0 && progress.done > 0) {
        if (m_rateStartDone < 0 || progress.done < m_rateStartDone) {
            m_rateStartDone = progress.done;
            m_rateClock.start();
            m_etaMs = -1;
        } else if (progress.done > m_rateStartDone && m_rateClock.elapsed() > 0) {
            const double perMs = double(progress.done - m_rateStartDone) / double(m_rateClock.elapsed());
            m_etaMs = perMs > 0 ? qint64(double(progress.total - progress.done) / perMs) : -1;
        }
    } else {
        m_etaMs = -1;
    }
    updateTimes();
}

void RunView::updateTimes()
{
    if (!m_run) {
        m_ui->timeLabel->clear();
        return;
    }
    QString text = formatElapsed(m_run->durationMs());
    if (m_run->status == RunStatus::Running && m_etaMs >= 0)
        text += u"  "_s + tr("ETA %1").arg(formatElapsed(m_etaMs));
    if (m_run->status == RunStatus::Retrying && m_run->nextAttemptAt.isValid()) {
        const qint64 wait = QDateTime::currentDateTimeUtc().msecsTo(m_run->nextAttemptAt);
        text = tr("next attempt in %1").arg(formatElapsed(std::max<qint64>(0, wait)));
    }
    m_ui->timeLabel->setText(text);
}

void RunView::updateEarlierNotice()
{
    const qint64 earlier = m_firstShownLine - 1;
    if (!m_run || earlier <= 0) {
        m_earlierNotice->setVisible(false);
        return;
    }
    m_earlierNotice->setText(
        tr("%n earlier line(s) not shown here. <a href=\"full\">Open the full log</a>",
           nullptr, int(std::min<qint64>(earlier, std::numeric_limits<int>::max()))));
    m_earlierNotice->setVisible(true);
}

void RunView::cancelRun()
{
    if (m_runId.isEmpty())
        return;
    cancelRunAnywhere(m_services.engine, m_services.store, m_runId, this,
                      [this](const QString &text) { Q_EMIT message(text); });
}

void RunView::exportRun(ExportFormat format)
{
    if (!m_run)
        return;
    QString filter;
    QString suffix;
    switch (format) {
    case ExportFormat::Json:
        filter = tr("JSON files (*.json)");
        suffix = u"json"_s;
        break;
    case ExportFormat::Csv:
        filter = tr("CSV files (*.csv)");
        suffix = u"csv"_s;
        break;
    case ExportFormat::Text:
        filter = tr("Text files (*.txt *.log)");
        suffix = u"txt"_s;
        break;
    }
    const QString suggested = QDir(QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation))
                                  .filePath(u"%1-%2.%3"_s.arg(m_run->task, m_run->id.left(8), suffix));
    const QString path = QFileDialog::getSaveFileName(this, tr("Export Run"), suggested, filter);
    if (!path.isEmpty())
        exportRunTo(format, path);
}

void RunView::exportRunTo(ExportFormat format, const QString &path)
{
    if (!m_run)
        return;
    const Run run = *m_run;
    IRunStore *store = m_services.store;
    const LogLines memoryLog = store || !m_services.engine ? LogLines()
                                                           : m_services.engine->recentLog(run.id);
    Q_EMIT message(tr("Exporting to %1…").arg(QDir::toNativeSeparators(path)));
    // Not then(this): Qt 6.4's continuations with a context do not survive the context going
    // first, and a view may close while an export still runs. whenDone() watches with an
    // object the view owns; it and computeOnPool() hand the closure and the result over in an
    // order ThreadSanitizer sees.
    detail::whenDone(this,
                     detail::computeOnPool(QThreadPool::globalInstance(),
                                           [store, run, memoryLog, format, path] {
                                               return writeExport(store, run, memoryLog, format, path);
                                           }),
                     [this, path](const QString &error) {
                         Q_EMIT message(error.isEmpty()
                                            ? tr("Saved %1").arg(QDir::toNativeSeparators(path))
                                            : tr("Could not save %1: %2")
                                                  .arg(QDir::toNativeSeparators(path), error));
                         Q_EMIT exportFinished(path, error);
                     });
}

void RunView::openFullLog()
{
    if (!m_run)
        return;
    // The user's own cache, not /tmp: a log may say things others should not read.
    const QDir cache(QStandardPaths::writableLocation(QStandardPaths::CacheLocation));
    cache.mkpath(u"logs"_s);
    const QString path = cache.filePath(u"logs/%1.log"_s.arg(m_run->id));
    auto *connection = new QObject(this);
    connect(this, &RunView::exportFinished, connection,
            [connection, path](const QString &donePath, const QString &error) {
                if (donePath != path)
                    return;
                if (error.isEmpty())
                    QDesktopServices::openUrl(QUrl::fromLocalFile(path));
                connection->deleteLater();
            });
    exportRunTo(ExportFormat::Text, path);
}

} // namespace taskdeck::ui
