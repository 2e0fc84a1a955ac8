// SPDX-License-Identifier: MIT
#pragma once

#include "field.h"
#include "taskregistry.h"

#include <QJsonObject>
#include <QPointer>
#include <QWidget>

class QFormLayout;
class QLabel;

namespace taskdeck::ui {

class FieldEditor;
class MessageBanner;

/*!
 * The form generated from a task's fields: one row per field in a QFormLayout with its
 * label (a '*' marks required fields; the editor is the label's buddy), the editor, the
 * field's help text and, while there is one, its error.
 *
 * Errors show next to their fields, all at once; errors that name no field of the form go
 * to a banner above it. Text that breaks a pattern, a length or a range is reported as it
 * is typed.
 */
class TaskForm final : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(TaskForm)

public:
    explicit TaskForm(QWidget *parent = nullptr);
    ~TaskForm() override;

    /*! Rebuilds the form for \a task's fields, with their defaults shown. Null empties it. */
    void setTask(const taskdeck::TaskPtr &task);
    taskdeck::TaskPtr task() const { return m_task; }

    /*!
     * The raw arguments as the engine accepts them: each field's typed value or its text as
     * typed. Empty fields are left out, so the engine applies defaults to them.
     */
    QJsonObject values() const;
    /*!
     * Fills every field from \a args (a re-run): fields \a args does not name are emptied.
     * Secret fields stay empty and ask for the value again, since history keeps them
     * redacted.
     */
    void setValues(const QJsonObject &args);

    /*! Checks values() as the engine would; shows every error and returns whether none. */
    bool validate();
    /*! Shows \a errors next to their fields (the others in a banner), replacing any shown. */
    void setErrors(const taskdeck::FieldErrors &errors);
    void clearErrors();
    /*! True while some field shows an error. */
    bool hasErrors() const;

    /*! The input widget of \a fieldKey (the label's buddy), or null. */
    QWidget *editor(const QString &fieldKey) const;
    /*! The error shown for \a fieldKey; empty when none. */
    QString errorText(const QString &fieldKey) const;
    /*! The text of the banner for errors that name no field; empty while it is hidden. */
    QString formErrorText() const;
    /*! Every focusable widget of the form's editors, in tab order. */
    QList<QWidget *> focusChain() const;
    /*! The first field's input, in form order, that shows an error; null when none. */
    QWidget *firstInvalidEditor() const;

Q_SIGNALS:
    /*! The user changed a value. */
    void changed();

private:
    struct Row
    {
        QString key;
        FieldEditor *editor = nullptr;
        QLabel *label = nullptr;
        QLabel *help = nullptr;
        QLabel *error = nullptr;
    };

    void clear();
    Row *row(const QString &key);
    const Row *row(const QString &key) const;
    void showError(Row &row, const QString &message);
    void onEdited(Row &row);
    void updateColors();
    bool event(QEvent *event) override;

    taskdeck::TaskPtr m_task;
    MessageBanner *m_banner = nullptr;
    QWidget *m_body = nullptr;
    QFormLayout *m_form = nullptr;
    QList<Row> m_rows;
};

} // namespace taskdeck::ui
