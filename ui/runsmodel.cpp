// SPDX-License-Identifier: MIT
#include "runsmodel.h"

#include "taskengine.h"
#include "taskicons.h"
#include "taskregistry.h"

#include <QJsonDocument>

#include <algorithm>
#include <limits>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

QString formatTime(const QDateTime &time)
{
    if (!time.isValid())
        return {};
    const QDateTime local = time.toLocalTime();
    if (local.date() == QDate::currentDate())
        return local.toString(u"HH:mm:ss"_s);
    return local.toString(u"yyyy-MM-dd HH:mm"_s);
}

QString formatFullTime(const QDateTime &time)
{
    return time.isValid() ? time.toLocalTime().toString(u"yyyy-MM-dd HH:mm:ss.zzz"_s) : QString();
}

} // namespace

RunTableModel::RunTableModel(QObject *parent)
    : QAbstractTableModel(parent)
{
    m_ticker.setInterval(std::chrono::seconds(1));
    connect(&m_ticker, &QTimer::timeout, this, &RunTableModel::tick);
}

RunTableModel::~RunTableModel() = default;

int RunTableModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_runs.size());
}

int RunTableModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

void RunTableModel::setTaskRegistry(TaskRegistry *registry)
{
    m_registry = registry;
    if (!m_runs.isEmpty())
        Q_EMIT dataChanged(index(0, TaskColumn), index(int(m_runs.size()) - 1, TaskColumn));
}

QString RunTableModel::taskTitle(const QString &key) const
{
    if (m_registry) {
        if (const TaskPtr task = m_registry->find(key); task && !task->title.isEmpty())
            return task->title;
    }
    return key;
}

QString RunTableModel::statusText(const Run &run)
{
    switch (run.status) {
    case RunStatus::Queued: return tr("Queued");
    case RunStatus::Running:
        return run.attempt > 1 ? tr("Running (attempt %1 of %2)").arg(run.attempt).arg(run.maxAttempts)
                               : tr("Running");
    case RunStatus::Retrying:
        return tr("Retrying at %1 (attempt %2 of %3)")
            .arg(run.nextAttemptAt.toLocalTime().toString(u"HH:mm:ss"_s))
            .arg(run.attempt + 1)
            .arg(run.maxAttempts);
    case RunStatus::Succeeded: return tr("Succeeded");
    case RunStatus::Failed: return tr("Failed");
    case RunStatus::Canceled: return tr("Canceled");
    case RunStatus::TimedOut: return tr("Timed out");
    case RunStatus::Interrupted: return tr("Interrupted");
    }
    return runStatusName(run.status);
}

QString RunTableModel::formatDuration(qint64 ms)
{
    if (ms < 0)
        return {};
    const qint64 seconds = ms / 1000;
    const qint64 h = seconds / 3600;
    const qint64 m = (seconds / 60) % 60;
    const qint64 s = seconds % 60;
    if (h > 0)
        return u"%1:%2:%3"_s.arg(h).arg(m, 2, 10, QChar(u'0')).arg(s, 2, 10, QChar(u'0'));
    return u"%1:%2"_s.arg(m).arg(s, 2, 10, QChar(u'0'));
}

QString RunTableModel::formatEta(qint64 ms)
{
    if (ms < 0)
        return {};
    const qint64 seconds = (ms + 999) / 1000;
    if (seconds < 60)
        return tr("%1s").arg(seconds);
    if (seconds < 3600)
        return tr("%1m %2s").arg(seconds / 60).arg(seconds % 60, 2, 10, QChar(u'0'));
    return tr("%1h %2m").arg(seconds / 3600).arg((seconds / 60) % 60, 2, 10, QChar(u'0'));
}

qint64 RunTableModel::estimateEta(const Run &run, const QDateTime &now)
{
    const Progress &p = run.progress;
    if (run.status != RunStatus::Running || p.total <= 0 || p.done <= 0 || !run.startedAt.isValid())
        return -1;
    if (p.done >= p.total)
        return 0;
    const qint64 elapsed = run.startedAt.msecsTo(now);
    if (elapsed <= 0)
        return -1;
    // The average rate so far: elapsed per unit done, times the units left.
    const double left = double(p.total - p.done) * double(elapsed) / double(p.done);
    return left > double(std::numeric_limits<qint64>::max() / 2) ? -1 : qint64(left);
}

QString RunTableModel::progressText(const Run &run, qint64 etaMs)
{
    QStringList parts;
    const int percent = run.progress.percent();
    if (percent >= 0)
        parts.append(tr("%1%").arg(percent));
    if (etaMs >= 0 && !run.isFinished())
        parts.append(tr("ETA %1").arg(formatEta(etaMs)));
    if (!run.progress.message.isEmpty())
        parts.append(run.progress.message);
    return parts.join(u" · "_s);
}

QVariant RunTableModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const Run &run = m_runs.at(index.row());
    switch (role) {
    case RunIdRole: return run.id;
    case StatusRole: return int(run.status);
    case ProgressRole: return run.progress.percent();
    case EtaRole: return estimateEta(run, QDateTime::currentDateTimeUtc());
    case TaskKeyRole: return run.task;
    case ProgressMessageRole: return run.progress.message;
    default: break;
    }
    switch (index.column()) {
    case StatusColumn:
        if (role == Qt::DisplayRole)
            return statusText(run);
        if (role == Qt::DecorationRole)
            return runStatusIcon(run.status);
        if (role == Qt::ToolTipRole) {
            QString tip = statusText(run);
            if (!run.error.isEmpty())
                tip += u'\n' + run.error.message;
            return tip;
        }
        break;
    case TaskColumn:
        if (role == Qt::DisplayRole)
            return taskTitle(run.task);
        if (role == Qt::ToolTipRole) {
            QString tip = run.task;
            if (!run.args.isEmpty())
                tip += u'\n' + QString::fromUtf8(QJsonDocument(run.args).toJson(QJsonDocument::Compact));
            return QString(tip + u'\n' + tr("Run %1").arg(run.id));
        }
        break;
    case StartedColumn:
        if (role == Qt::DisplayRole)
            return formatTime(run.startedAt.isValid() ? run.startedAt : run.queuedAt);
        if (role == Qt::ToolTipRole) {
            QString tip = tr("Queued %1").arg(formatFullTime(run.queuedAt));
            if (run.startedAt.isValid())
                tip += u'\n' + tr("Started %1").arg(formatFullTime(run.startedAt));
            if (run.finishedAt.isValid())
                tip += u'\n' + tr("Finished %1").arg(formatFullTime(run.finishedAt));
            return tip;
        }
        break;
    case DurationColumn:
        if (role == Qt::DisplayRole) {
            if (!run.startedAt.isValid())
                return QString();
            const QDateTime end = run.finishedAt.isValid() && run.isFinished()
                ? run.finishedAt : QDateTime::currentDateTimeUtc();
            return formatDuration(qMax<qint64>(0, run.startedAt.msecsTo(end)));
        }
        if (role == Qt::TextAlignmentRole)
            return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        break;
    case ProgressColumn:
        if (role == Qt::DisplayRole)
            return progressText(run, estimateEta(run, QDateTime::currentDateTimeUtc()));
        if (role == Qt::ToolTipRole)
            return run.progress.total > 0
                ? tr("%1 of %2").arg(run.progress.done).arg(run.progress.total) : run.progress.message;
        break;
    default:
        break;
    }
    return {};
}

QVariant RunTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case StatusColumn: return tr("Status");
    case TaskColumn: return tr("Task");
    case StartedColumn: return tr("Started");
    case DurationColumn: return tr("Duration");
    case ProgressColumn: return tr("Progress");
    default: return {};
    }
}

QHash<int, QByteArray> RunTableModel::roleNames() const
{
    QHash<int, QByteArray> names = QAbstractTableModel::roleNames();
    names.insert(RunIdRole, "runId");
    names.insert(StatusRole, "status");
    names.insert(ProgressRole, "progress");
    names.insert(EtaRole, "eta");
    names.insert(TaskKeyRole, "task");
    names.insert(ProgressMessageRole, "progressMessage");
    return names;
}

std::optional<Run> RunTableModel::run(const QString &id) const
{
    const int row = rowOf(id);
    if (row < 0)
        return std::nullopt;
    return m_runs.at(row);
}

int RunTableModel::rowOf(const QString &id) const
{
    for (qsizetype row = 0; row < m_runs.size(); ++row) {
        if (m_runs.at(row).id == id)
            return int(row);
    }
    return -1;
}

void RunTableModel::insertRun(int row, const Run &run)
{
    beginInsertRows(QModelIndex(), row, row);
    m_runs.insert(row, run);
    endInsertRows();
    updateTicking();
}

void RunTableModel::replaceRun(int row, const Run &run)
{
    m_runs[row] = run;
    Q_EMIT dataChanged(index(row, 0), index(row, ColumnCount - 1));
    updateTicking();
}

void RunTableModel::removeRun(int row)
{
    beginRemoveRows(QModelIndex(), row, row);
    m_runs.removeAt(row);
    endRemoveRows();
    updateTicking();
}

void RunTableModel::appendRuns(const QList<Run> &runs)
{
    if (runs.isEmpty())
        return;
    const int first = int(m_runs.size());
    beginInsertRows(QModelIndex(), first, first + int(runs.size()) - 1);
    m_runs.append(runs);
    endInsertRows();
    updateTicking();
}

void RunTableModel::resetRuns(QList<Run> runs)
{
    beginResetModel();
    m_runs = std::move(runs);
    endResetModel();
    updateTicking();
}

void RunTableModel::setRowProgress(int row, const Progress &progress)
{
    m_runs[row].progress = progress;
}

void RunTableModel::progressChanged(int first, int last)
{
    Q_EMIT dataChanged(index(first, ProgressColumn), index(last, ProgressColumn),
                       {Qt::DisplayRole, Qt::ToolTipRole, ProgressRole, EtaRole, ProgressMessageRole});
}

void RunTableModel::updateTicking()
{
    const bool anyRunning = std::any_of(m_runs.cbegin(), m_runs.cend(), [](const Run &run) {
        return run.status == RunStatus::Running;
    });
    if (anyRunning && !m_ticker.isActive())
        m_ticker.start();
    else if (!anyRunning)
        m_ticker.stop();
}

void RunTableModel::tick()
{
    int first = -1;
    int last = -1;
    for (qsizetype row = 0; row < m_runs.size(); ++row) {
        if (m_runs.at(row).status == RunStatus::Running) {
            if (first < 0)
                first = int(row);
            last = int(row);
        }
    }
    if (first < 0) {
        m_ticker.stop();
        return;
    }
    Q_EMIT dataChanged(index(first, DurationColumn), index(last, ProgressColumn),
                       {Qt::DisplayRole, EtaRole});
}

// --- ActiveRunsModel ------------------------------------------------------------------------

ActiveRunsModel::ActiveRunsModel(TaskEngine *engine, QObject *parent)
    : RunTableModel(parent)
{
    m_progressTimer.setSingleShot(true);
    m_progressTimer.setInterval(kDefaultProgressInterval);
    connect(&m_progressTimer, &QTimer::timeout, this, &ActiveRunsModel::flushProgress);
    if (!engine)
        return;
    setTaskRegistry(engine->registry());
    QList<Run> runs = engine->activeRuns();
    std::reverse(runs.begin(), runs.end());
    resetRuns(std::move(runs));
    connect(engine, &TaskEngine::runQueued, this, &ActiveRunsModel::upsert);
    connect(engine, &TaskEngine::runStarted, this, &ActiveRunsModel::upsert);
    connect(engine, &TaskEngine::runRetrying, this, &ActiveRunsModel::upsert);
    connect(engine, &TaskEngine::runFinished, this, [this](const Run &run) {
        upsert(run);
        trimFinished();
    });
    connect(engine, &TaskEngine::runProgress, this, &ActiveRunsModel::onProgress);
}

ActiveRunsModel::~ActiveRunsModel() = default;

void ActiveRunsModel::setMaxFinished(int max)
{
    m_maxFinished = qMax(0, max);
    trimFinished();
}

std::chrono::milliseconds ActiveRunsModel::progressInterval() const
{
    return m_progressTimer.intervalAsDuration();
}

void ActiveRunsModel::setProgressInterval(std::chrono::milliseconds interval)
{
    m_progressTimer.setInterval(interval);
}

int ActiveRunsModel::activeCount() const
{
    return int(std::count_if(m_runs.cbegin(), m_runs.cend(),
                             [](const Run &run) { return !run.isFinished(); }));
}

void ActiveRunsModel::upsert(const Run &run)
{
    // A snapshot is newer than any progress report still waiting for the view.
    m_pendingProgress.remove(run.id);
    const int row = rowOf(run.id);
    if (row >= 0)
        replaceRun(row, run);
    else
        insertRun(0, run);
}

void ActiveRunsModel::onProgress(const QString &runId, const Progress &progress)
{
    m_pendingProgress.insert(runId, progress);
    if (!m_progressTimer.isActive())
        m_progressTimer.start();
}

void ActiveRunsModel::flushProgress()
{
    int first = std::numeric_limits<int>::max();
    int last = -1;
    for (auto it = m_pendingProgress.cbegin(); it != m_pendingProgress.cend(); ++it) {
        const int row = rowOf(it.key());
        if (row < 0)
            continue;
        setRowProgress(row, it.value());
        first = qMin(first, row);
        last = qMax(last, row);
    }
    m_pendingProgress.clear();
    if (last >= 0)
        progressChanged(first, last);
}

void ActiveRunsModel::trimFinished()
{
    int finished = int(std::count_if(m_runs.cbegin(), m_runs.cend(),
                                     [](const Run &run) { return run.isFinished(); }));
    for (int row = int(m_runs.size()) - 1; row >= 0 && finished > m_maxFinished; --row) {
        if (m_runs.at(row).isFinished()) {
            removeRun(row);
            --finished;
        }
    }
}

} // namespace taskdeck::ui
