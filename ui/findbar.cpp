// SPDX-License-Identifier: MIT
#include "findbar.h"

#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QStyle>
#include <QToolButton>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

FindBar::FindBar(QWidget *parent)
    : QWidget(parent)
    , m_field(new QLineEdit(this))
    , m_status(new QLabel(this))
    , m_previous(new QToolButton(this))
    , m_next(new QToolButton(this))
    , m_case(new QToolButton(this))
    , m_close(new QToolButton(this))
{
    m_field->setPlaceholderText(tr("Find in log"));
    m_field->setClearButtonEnabled(true);
    m_field->installEventFilter(this);
    m_status->setMinimumWidth(fontMetrics().horizontalAdvance(tr("No matches")) + 8);
    m_previous->setArrowType(Qt::UpArrow);
    m_previous->setToolTip(tr("Previous match (Shift+F3)"));
    m_next->setArrowType(Qt::DownArrow);
    m_next->setToolTip(tr("Next match (F3)"));
    m_case->setText(tr("Aa"));
    m_case->setCheckable(true);
    m_case->setToolTip(tr("Match case"));
    m_close->setIcon(style()->standardIcon(QStyle::SP_TitleBarCloseButton));
    m_close->setAutoRaise(true);
    m_close->setToolTip(tr("Close (Esc)"));

    auto *layout = new QHBoxLayout(this);
    layout->setContentsMargins(4, 2, 4, 2);
    layout->addWidget(m_field, 1);
    layout->addWidget(m_status);
    layout->addWidget(m_previous);
    layout->addWidget(m_next);
    layout->addWidget(m_case);
    layout->addWidget(m_close);

    connect(m_field, &QLineEdit::textChanged, this, &FindBar::textChanged);
    connect(m_case, &QToolButton::toggled, this, &FindBar::caseSensitivityChanged);
    connect(m_next, &QToolButton::clicked, this, &FindBar::nextRequested);
    connect(m_previous, &QToolButton::clicked, this, &FindBar::previousRequested);
    connect(m_close, &QToolButton::clicked, this, &FindBar::closeRequested);
}

QString FindBar::text() const
{
    return m_field->text();
}

void FindBar::setText(const QString &text)
{
    m_field->setText(text);
}

bool FindBar::isCaseSensitive() const
{
    return m_case->isChecked();
}

void FindBar::setCaseSensitive(bool sensitive)
{
    m_case->setChecked(sensitive);
}

void FindBar::setStatus(int current, int count)
{
    if (m_field->text().isEmpty())
        m_status->clear();
    else if (count == 0)
        m_status->setText(tr("No matches"));
    else if (current <= 0)
        m_status->setText(count == 1 ? tr("1 match") : tr("%1 matches").arg(count));
    else
        m_status->setText(tr("%1 of %2").arg(current).arg(count));
}

QString FindBar::statusText() const
{
    return m_status->text();
}

void FindBar::focusField()
{
    m_field->setFocus(Qt::ShortcutFocusReason);
    m_field->selectAll();
}

bool FindBar::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == m_field && event->type() == QEvent::KeyPress) {
        const auto *key = static_cast<QKeyEvent *>(event);
        const bool shift = key->modifiers().testFlag(Qt::ShiftModifier);
        switch (key->key()) {
        case Qt::Key_Return:
        case Qt::Key_Enter:
        case Qt::Key_F3:
            if (shift)
                Q_EMIT previousRequested();
            else
                Q_EMIT nextRequested();
            return true;
        case Qt::Key_Escape:
            Q_EMIT closeRequested();
            return true;
        default:
            break;
        }
    }
    return QWidget::eventFilter(watched, event);
}

} // namespace taskdeck::ui
