// SPDX-License-Identifier: MIT
#pragma once

#include <QWidget>

class QLabel;
class QLineEdit;
class QToolButton;

namespace taskdeck::ui {

/*!
 * The find bar under a log pane: a field, the match count ("3 of 17"), previous and next,
 * and a case-sensitivity toggle. Enter and F3 ask for the next match, Shift+Enter and
 * Shift+F3 for the previous one, Esc closes. It only asks; the pane searches.
 */
class FindBar final : public QWidget
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(FindBar)

public:
    explicit FindBar(QWidget *parent = nullptr);

    QString text() const;
    /*! Sets the field's text (emits textChanged() when it differs). */
    void setText(const QString &text);
    bool isCaseSensitive() const;
    void setCaseSensitive(bool sensitive);
    /*! Shows "current of count", "No matches", or nothing for an empty search. */
    void setStatus(int current, int count);
    QString statusText() const;
    /*! Focuses the field with its text selected. */
    void focusField();
    QLineEdit *field() const { return m_field; }

Q_SIGNALS:
    void textChanged(const QString &text);
    void caseSensitivityChanged(bool sensitive);
    void nextRequested();
    void previousRequested();
    void closeRequested();

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    QLineEdit *m_field = nullptr;
    QLabel *m_status = nullptr;
    QToolButton *m_previous = nullptr;
    QToolButton *m_next = nullptr;
    QToolButton *m_case = nullptr;
    QToolButton *m_close = nullptr;
};

} // namespace taskdeck::ui
