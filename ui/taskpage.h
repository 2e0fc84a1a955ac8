// SPDX-License-Identifier: MIT
#pragma once

#include "taskengine.h"
#include "taskregistry.h"

#include <QJsonObject>
#include <QPointer>
#include <QWidget>

class QLabel;
class QPushButton;
class QScrollArea;
class QTimer;

namespace taskdeck::ui {

class MessageBanner;
class TaskForm;

/*!
 * The page of one task: its header (icon, title, key, category, tags), the danger warning
 * or expensive notice, its description, the generated form and the Start and Run buttons.
 *
 * Run (Ctrl+Return, the default button) and Start (Ctrl+Shift+Return) validate the form
 * first: nothing happens while a field is invalid, and focus goes to the first invalid
 * one. A dangerous task then asks for its key in a DangerConfirmDialog, an expensive one
 * asks once in an ExpensiveConfirmDialog (unless the user opted out); then runRequested()
 * or startRequested() is emitted. The dialogs are window-modal children of the page,
 * opened without a nested event loop.
 */
class TaskPage final : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(TaskPage)

public:
    explicit TaskPage(QWidget *parent = nullptr);
    ~TaskPage() override;

    /*! Shows \a task with a fresh form; null shows an empty page. Clears messages. */
    void setTask(const taskdeck::TaskPtr &task);
    taskdeck::TaskPtr task() const { return m_task; }
    TaskForm *form() const { return m_form; }

    QPushButton *runButton() const { return m_run; }
    QPushButton *startButton() const { return m_start; }

    /*!
     * While \a busy, Run says "Running…" with a turning indicator and the form and buttons
     * are disabled; the rest of the window stays live.
     */
    void setBusy(bool busy);
    bool isBusy() const { return m_busy; }

    /*!
     * Shows why the engine refused a run: argument errors next to their fields, anything
     * else in an error banner above the form.
     */
    void setStartErrors(const taskdeck::StartError &error);
    /*! Hides the error banner and every field error. */
    void clearMessages();
    /*! The error banner's text; empty while it is hidden. */
    QString errorMessage() const;

Q_SIGNALS:
    /*! Run was pressed and confirmed; \a confirmed is true after a danger confirmation. */
    void runRequested(const QJsonObject &args, bool confirmed);
    /*! Start was pressed and confirmed; \a confirmed as for runRequested(). */
    void startRequested(const QJsonObject &args, bool confirmed);

private:
    enum class Action { Run, Start };

    void request(Action action);
    void askExpensive(Action action, const QJsonObject &args, bool confirmed);
    void finish(Action action, const QJsonObject &args, bool confirmed);
    void updateHeader();
    void updateColors();
    void advanceSpinner();
    void changeEvent(QEvent *event) override;

    taskdeck::TaskPtr m_task;
    QLabel *m_icon = nullptr;
    QLabel *m_title = nullptr;
    QLabel *m_key = nullptr;
    QLabel *m_meta = nullptr;
    MessageBanner *m_danger = nullptr;
    MessageBanner *m_expensive = nullptr;
    MessageBanner *m_error = nullptr;
    QLabel *m_description = nullptr;
    QScrollArea *m_scroll = nullptr;
    TaskForm *m_form = nullptr;
    QPushButton *m_start = nullptr;
    QPushButton *m_run = nullptr;
    QTimer *m_spinTimer = nullptr;
    int m_spinStep = 0;
    bool m_busy = false;
    QPointer<QDialog> m_dialog; //!< the confirmation being asked, if any
};

} // namespace taskdeck::ui
