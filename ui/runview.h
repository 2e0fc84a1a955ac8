// SPDX-License-Identifier: MIT
#pragma once

#include "desktop.h"
#include "run.h"

#include <QElapsedTimer>
#include <QPointer>
#include <QWidget>

#include <memory>
#include <optional>

QT_BEGIN_NAMESPACE
class QLabel;
class QTabWidget;
class QTimer;
namespace Ui { class RunView; }
QT_END_NAMESPACE

namespace taskdeck {
class RunHandle;
}

namespace taskdeck::ui {

class LogView;
class ResultView;

/*!
 * One run, live or from the history: status, progress with ETA, elapsed time, Cancel,
 * Re-run and Export, and tabs for the log, the result, the error and the details.
 *
 * A run is followed through RunFollower: what the engine holds arrives live, what it no
 * longer holds (or a run of another process) comes from the history, all without blocking.
 */
class RunView final : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(RunView)

public:
    enum class ExportFormat { Json, Csv, Text };

    explicit RunView(const DesktopServices &services, QWidget *parent = nullptr);
    ~RunView() override;

    /*! Shows \a runId, following it while it runs. An unknown id says so. */
    void showRun(const QString &runId);
    /*! The run shown, or an empty string. */
    QString runId() const { return m_runId; }
    /*! The latest snapshot of the run shown, once it is known. */
    std::optional<Run> run() const { return m_run; }

    LogView *logView() const { return m_log; }
    ResultView *resultView() const { return m_result; }
    QTabWidget *tabs() const;

    /*! Asks where to save and writes the run (JSON, CSV) or its log (text) there. */
    void exportRun(ExportFormat format);
    /*! Writes the run to \a path off the GUI thread; exportFinished() tells the outcome. */
    void exportRunTo(ExportFormat format, const QString &path);

public Q_SLOTS:
    void cancelRun();

Q_SIGNALS:
    /*! Re-run was asked for: the window fills the task's form with \a run's arguments. */
    void rerunRequested(const taskdeck::Run &run);
    /*! The run shown changed state (started, finished ...). */
    void runChanged(const taskdeck::Run &run);
    /*! An export ended: \a error is empty on success. */
    void exportFinished(const QString &path, const QString &error);
    /*! A short message for the status bar. */
    void message(const QString &text);

private:
    void attach(std::unique_ptr<RunHandle> handle);
    void setRun(const Run &run);
    void updateProgress(const Progress &progress);
    void updateTimes();
    void updateEarlierNotice();
    void openFullLog();
    void showUnknown();

    DesktopServices m_services;
    std::unique_ptr<Ui::RunView> m_ui;
    LogView *m_log = nullptr;
    ResultView *m_result = nullptr;
    QLabel *m_earlierNotice = nullptr;
    QTimer *m_ticker = nullptr;
    std::unique_ptr<RunHandle> m_handle;
    QString m_runId;
    std::optional<Run> m_run;
    quint64 m_generation = 0;
    qint64 m_firstShownLine = 1;   // the number of the first log line the pane got
    // ETA: progress rate since the first report of this attempt
    qint64 m_rateStartDone = -1;
    QElapsedTimer m_rateClock;
    qint64 m_etaMs = -1;
};

/*! "1:05", "1:02:05" */
QString formatElapsed(qint64 ms);
/*! "Running", "Succeeded", "Waiting to retry" ... (translated). */
QString runStatusText(RunStatus status);

} // namespace taskdeck::ui
