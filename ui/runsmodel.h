// SPDX-License-Identifier: MIT
#pragma once

#include "run.h"

#include <QAbstractTableModel>
#include <QDateTime>
#include <QHash>
#include <QList>
#include <QPointer>
#include <QTimer>

#include <chrono>
#include <optional>

namespace taskdeck {
class TaskEngine;
class TaskRegistry;
} // namespace taskdeck

namespace taskdeck::ui {

/*!
 * The columns, roles and formatting shared by the runs of this session (ActiveRunsModel)
 * and the recorded ones (HistoryModel): one row per run, newest first. Rows of runs that are
 * running refresh their elapsed time (and ETA) once a second.
 */
class RunTableModel : public QAbstractTableModel
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(RunTableModel)

public:
    enum Column { StatusColumn, TaskColumn, StartedColumn, DurationColumn, ProgressColumn, ColumnCount };
    Q_ENUM(Column)

    enum Role {
        RunIdRole = Qt::UserRole + 1, //!< QString
        StatusRole,                   //!< int: the RunStatus
        ProgressRole,                 //!< int: 0..100, -1 when unknown
        EtaRole,                      //!< qint64: milliseconds left (estimated), -1 when unknown
        TaskKeyRole,                  //!< QString
        ProgressMessageRole,          //!< QString: the task's own progress message
    };
    Q_ENUM(Role)

    ~RunTableModel() override;

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    QHash<int, QByteArray> roleNames() const override;

    /*! The run with \a id among the rows, or nullopt. */
    std::optional<Run> run(const QString &id) const;
    /*! The run at \a row (0 = newest). */
    const Run &runAt(int row) const { return m_runs.at(row); }
    /*! The row of the run with \a id, or -1. */
    int rowOf(const QString &id) const;

    /*! Names tasks by their titles from \a registry (not owned); keys are shown without one. */
    void setTaskRegistry(TaskRegistry *registry);

    /*! "Running", "Retrying at 12:00:05 (attempt 2 of 3)", ... */
    static QString statusText(const Run &run);
    /*! "0:07", "12:04", "1:02:03". */
    static QString formatDuration(qint64 ms);
    /*! "4s", "2m 05s", "1h 02m". */
    static QString formatEta(qint64 ms);
    /*! Milliseconds left at \a now, from the rate the run made progress since it started;
     *  -1 when that cannot be told. */
    static qint64 estimateEta(const Run &run, const QDateTime &now);
    /*! "61% · ETA 4s · copying" as shown in the progress column. */
    static QString progressText(const Run &run, qint64 etaMs);

protected:
    explicit RunTableModel(QObject *parent = nullptr);

    void insertRun(int row, const Run &run);
    void replaceRun(int row, const Run &run);
    void removeRun(int row);
    /*! Adds \a runs below the last row. */
    void appendRuns(const QList<Run> &runs);
    /*! Replaces the whole list (a model reset). */
    void resetRuns(QList<Run> runs);
    /*! Sets the progress of the row without signalling; see progressChanged(). */
    void setRowProgress(int row, const Progress &progress);
    /*! Announces a change of the progress column of rows \a first..\a last. */
    void progressChanged(int first, int last);

    QList<Run> m_runs;

private:
    void tick();
    void updateTicking();
    QString taskTitle(const QString &key) const;

    QPointer<TaskRegistry> m_registry;
    QTimer m_ticker;
};

/*!
 * The runs of this session, from a TaskEngine's signals: queued, running, waiting to retry
 * and finished, newest first. Progress reports are coalesced: however often the engine
 * reports, the view hears of them at most every progressInterval(), as one change of the
 * progress column. At most maxFinished() finished runs are kept; the oldest go first.
 */
class ActiveRunsModel final : public RunTableModel
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(ActiveRunsModel)

public:
    static constexpr int kDefaultMaxFinished = 200;
    static constexpr std::chrono::milliseconds kDefaultProgressInterval{100};

    /*! Shows the runs of \a engine (not owned; must outlive the model), starting with the
     *  ones active now. Task titles come from the engine's registry. */
    explicit ActiveRunsModel(TaskEngine *engine, QObject *parent = nullptr);
    ~ActiveRunsModel() override;

    int maxFinished() const { return m_maxFinished; }
    /*! Keeps at most \a max finished runs, dropping the oldest finished ones now if needed. */
    void setMaxFinished(int max);

    std::chrono::milliseconds progressInterval() const;
    void setProgressInterval(std::chrono::milliseconds interval);

    /*! Queued, running and retrying runs shown. */
    int activeCount() const;

private:
    void upsert(const Run &run);
    void onProgress(const QString &runId, const Progress &progress);
    void flushProgress();
    void trimFinished();

    int m_maxFinished = kDefaultMaxFinished;
    QHash<QString, Progress> m_pendingProgress;
    QTimer m_progressTimer;
};

} // namespace taskdeck::ui
