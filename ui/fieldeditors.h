// SPDX-License-Identifier: MIT
#pragma once

#include "field.h"

#include <QJsonValue>
#include <QWidget>

namespace taskdeck::ui {

/*!
 * The editor of one task field in a generated form: an input widget of the field's type,
 * wrapped in a frame that turns the error colour while the field is invalid.
 *
 * Editors hand out raw values as the engine accepts them (typed JSON, or text as typed when
 * it does not parse) and QJsonValue::Undefined while empty, so an untouched optional field
 * is left out of a form's arguments. Make them with createFieldEditor().
 */
class FieldEditor : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(FieldEditor)

public:
    ~FieldEditor() override;

    const Field &field() const { return m_field; }

    /*! The widget that takes focus: the label's buddy, named after the field's label. */
    virtual QWidget *input() const = 0;
    /*! Every focusable widget of the editor, in tab order (the input first). */
    virtual QList<QWidget *> focusWidgets() const;

    /*! The raw value, or QJsonValue::Undefined while the editor is empty. */
    virtual QJsonValue value() const = 0;
    /*!
     * Shows \a value (a typed value or text); Undefined or null empties the editor. A
     * Secret never shows a value: see SecretEditor.
     */
    virtual void setValue(const QJsonValue &value) = 0;

    /*!
     * What is wrong with the text typed so far, checked as the user types (a pattern, a
     * length, a number out of range); empty when nothing is or when the check waits for
     * the whole form (a file that does not exist).
     */
    virtual QString liveError() const;

    bool isInvalid() const { return m_invalid; }
    /*! Draws the error frame around the input while \a invalid. */
    void setInvalid(bool invalid);

Q_SIGNALS:
    /*! The user changed the value (not emitted by setValue()). */
    void edited();

protected:
    FieldEditor(const Field &field, QWidget *parent);
    /*! The error coerce() reports for \a raw, or an empty string. */
    QString coerceError(const QJsonValue &raw) const;
    void paintEvent(QPaintEvent *event) override;

    bool m_settingValue = false; //!< true inside setValue(): keeps edited() for the user
    void emitEdited();

private:
    Field m_field;
    bool m_invalid = false;
};

/*! The editor for \a field's type, with its default shown. */
FieldEditor *createFieldEditor(const Field &field, QWidget *parent = nullptr);

/*!
 * Text in Secret editors: never shows a stored value. With a default, its placeholder says
 * a value is set; after setValue() of a stored (redacted) value it asks to type it again.
 */
QString secretPlaceholderForDefault();
QString secretPlaceholderAfterRerun();

} // namespace taskdeck::ui
