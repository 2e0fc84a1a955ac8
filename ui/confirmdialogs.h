// SPDX-License-Identifier: MIT
#pragma once

#include "task.h"

#include <QDialog>

#include <memory>

class QCheckBox;
class QLineEdit;
class QPushButton;

namespace Ui { class DangerConfirmDialog; }

namespace taskdeck::ui {

/*!
 * Asks to confirm a dangerous task by typing its key. Shows the task's warning; the
 * confirm button is enabled only while the typed text equals the key exactly, and accept()
 * refuses anything else.
 */
class DangerConfirmDialog final : public QDialog
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(DangerConfirmDialog)

public:
    DangerConfirmDialog(const taskdeck::Task &task, QWidget *parent = nullptr);
    ~DangerConfirmDialog() override;

    QString taskKey() const { return m_key; }
    /*! True while the typed text equals the task key. */
    bool isConfirmed() const;

    QLineEdit *keyEdit() const;
    QPushButton *confirmButton() const;
    QPushButton *cancelButton() const;

    void accept() override;

private:
    std::unique_ptr<Ui::DangerConfirmDialog> m_ui;
    QString m_key;
};

/*!
 * Asks once before an expensive task runs, with a "Don't ask again for this task" check
 * box. The choice is kept in QSettings under confirm/expensive/<task key> (false once the
 * user asked not to be asked), and only when the run is confirmed.
 */
class ExpensiveConfirmDialog final : public QDialog
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(ExpensiveConfirmDialog)

public:
    ExpensiveConfirmDialog(const taskdeck::Task &task, QWidget *parent = nullptr);
    ~ExpensiveConfirmDialog() override;

    QCheckBox *dontAskAgainBox() const { return m_dontAsk; }
    QPushButton *confirmButton() const { return m_confirm; }
    QPushButton *cancelButton() const { return m_cancel; }

    void accept() override;

    /*! The settings key that remembers the choice for \a taskKey. */
    static QString settingsKey(const QString &taskKey);
    /*! Whether running \a taskKey should still ask (true until the user opted out). */
    static bool shouldAsk(const QString &taskKey);
    /*! Sets whether running \a taskKey asks first. */
    static void setShouldAsk(const QString &taskKey, bool ask);

private:
    QString m_key;
    QCheckBox *m_dontAsk = nullptr;
    QPushButton *m_confirm = nullptr;
    QPushButton *m_cancel = nullptr;
};

} // namespace taskdeck::ui
