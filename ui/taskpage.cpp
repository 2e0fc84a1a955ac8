// SPDX-License-Identifier: MIT
#include "taskpage.h"

#include "confirmdialogs.h"
#include "messagebanner.h"
#include "taskform.h"

#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QPainter>
#include <QPushButton>
#include <QScrollArea>
#include <QShortcut>
#include <QStyle>
#include <QTimer>
#include <QVBoxLayout>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

constexpr int SpinnerSteps = 12;

// One frame of the busy indicator: an arc that turns a step each frame.
QIcon spinnerFrame(int step, int size, const QColor &color)
{
    QPixmap pixmap(size, size);
    pixmap.fill(Qt::transparent);
    QPainter painter(&pixmap);
    painter.setRenderHint(QPainter::Antialiasing);
    const qreal pen = std::max(1.5, size / 8.0);
    painter.setPen(QPen(color, pen, Qt::SolidLine, Qt::RoundCap));
    const QRectF box = QRectF(0, 0, size, size).adjusted(pen, pen, -pen, -pen);
    const int start = -step * (360 / SpinnerSteps) * 16;
    painter.drawArc(box, start, 270 * 16);
    painter.end();
    // The button is disabled while busy: its indicator must not fade with it.
    QIcon icon;
    icon.addPixmap(pixmap, QIcon::Normal);
    icon.addPixmap(pixmap, QIcon::Disabled);
    return icon;
}

} // namespace

TaskPage::TaskPage(QWidget *parent)
    : QWidget(parent)
{
    auto *layout = new QVBoxLayout(this);

    auto *header = new QHBoxLayout;
    m_icon = new QLabel(this);
    header->addWidget(m_icon, 0, Qt::AlignTop);
    auto *titles = new QVBoxLayout;
    titles->setSpacing(0);
    auto *titleRow = new QHBoxLayout;
    titleRow->setSpacing(10);
    m_title = new QLabel(this);
    m_title->setTextFormat(Qt::PlainText);
    QFont big = m_title->font();
    big.setPointSizeF(big.pointSizeF() * 1.3);
    big.setBold(true);
    m_title->setFont(big);
    titleRow->addWidget(m_title);
    m_key = new QLabel(this);
    m_key->setTextFormat(Qt::PlainText);
    m_key->setTextInteractionFlags(Qt::TextSelectableByMouse);
    titleRow->addWidget(m_key, 0, Qt::AlignBaseline);
    titleRow->addStretch();
    titles->addLayout(titleRow);
    m_meta = new QLabel(this);
    m_meta->setTextFormat(Qt::PlainText);
    titles->addWidget(m_meta);
    header->addLayout(titles, 1);
    layout->addLayout(header);

    m_danger = new MessageBanner(MessageBanner::Type::Warning, QString(), this);
    layout->addWidget(m_danger);
    m_expensive = new MessageBanner(MessageBanner::Type::Information, QString(), this);
    layout->addWidget(m_expensive);
    m_error = new MessageBanner(MessageBanner::Type::Error, QString(), this);
    m_error->setCloseButtonVisible(true);
    layout->addWidget(m_error);

    m_description = new QLabel(this);
    m_description->setTextFormat(Qt::PlainText);
    m_description->setWordWrap(true);
    m_description->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_description);

    m_form = new TaskForm;
    m_scroll = new QScrollArea(this);
    m_scroll->setWidgetResizable(true);
    m_scroll->setFrameShape(QFrame::NoFrame);
    m_scroll->setFocusPolicy(Qt::NoFocus);
    m_scroll->setWidget(m_form);
    layout->addWidget(m_scroll, 1);

    auto *buttons = new QHBoxLayout;
    buttons->addStretch();
    m_start = new QPushButton(tr("&Start"), this);
    m_start->setToolTip(tr("Start in the background (Ctrl+Shift+Return)"));
    m_start->setAutoDefault(false);
    buttons->addWidget(m_start);
    m_run = new QPushButton(tr("&Run"), this);
    m_run->setToolTip(tr("Run and show the result (Ctrl+Return)"));
    m_run->setDefault(true);
    buttons->addWidget(m_run);
    layout->addLayout(buttons);

    connect(m_run, &QPushButton::clicked, this, [this] { request(Action::Run); });
    connect(m_start, &QPushButton::clicked, this, [this] { request(Action::Start); });
    // Enter and Return (keypad and main keyboard) both count.
    for (const QKeySequence &keys : {QKeySequence(Qt::CTRL | Qt::Key_Return),
                                     QKeySequence(Qt::CTRL | Qt::Key_Enter)}) {
        auto *shortcut = new QShortcut(keys, this);
        shortcut->setContext(Qt::WidgetWithChildrenShortcut);
        connect(shortcut, &QShortcut::activated, this, [this] { request(Action::Run); });
    }
    for (const QKeySequence &keys : {QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Return),
                                     QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Enter)}) {
        auto *shortcut = new QShortcut(keys, this);
        shortcut->setContext(Qt::WidgetWithChildrenShortcut);
        connect(shortcut, &QShortcut::activated, this, [this] { request(Action::Start); });
    }

    m_spinTimer = new QTimer(this);
    m_spinTimer->setInterval(80);
    connect(m_spinTimer, &QTimer::timeout, this, &TaskPage::advanceSpinner);

    updateColors();
    setTask(nullptr);
}

TaskPage::~TaskPage() = default;

void TaskPage::setTask(const TaskPtr &task)
{
    if (QDialog *open = m_dialog.data())
        open->reject();
    m_task = task;
    m_form->setTask(task);
    // The editors are made after the buttons, so the window's focus chain would put them
    // last: Tab goes from the last field to Start, then Run.
    const QList<QWidget *> chain = m_form->focusChain();
    if (!chain.isEmpty())
        setTabOrder(chain.last(), m_start);
    setTabOrder(m_start, m_run);
    clearMessages();
    updateHeader();
}

void TaskPage::updateHeader()
{
    const Task *t = m_task.get();
    m_icon->setVisible(t);
    m_start->setEnabled(t && !m_busy);
    m_run->setEnabled(t && !m_busy);
    if (!t) {
        m_title->setText(tr("No task selected"));
        m_key->clear();
        m_meta->clear();
        m_danger->hide();
        m_expensive->hide();
        m_description->hide();
        return;
    }
    const int size = style()->pixelMetric(QStyle::PM_LargeIconSize, nullptr, this);
    const QIcon icon = QIcon::fromTheme(t->icon);
    m_icon->setPixmap(icon.isNull() ? QPixmap() : icon.pixmap(size, size));
    m_icon->setVisible(!icon.isNull());
    m_title->setText(t->title.isEmpty() ? t->key : t->title);
    m_key->setText(t->key);
    QStringList meta;
    if (!t->category.isEmpty())
        meta << t->category;
    if (!t->tags.isEmpty())
        meta << t->tags.join(u", "_s);
    m_meta->setText(meta.join(u"  ·  "_s));
    m_meta->setVisible(!meta.isEmpty());

    m_danger->setText(t->danger);
    m_danger->setVisible(t->isDangerous());
    m_expensive->setText(tr("This task is expensive: it may take long or use a lot of "
                            "resources."));
    m_expensive->setVisible(t->expensive);
    m_description->setText(t->description);
    m_description->setVisible(!t->description.isEmpty());
}

void TaskPage::updateColors()
{
    QPalette muted = m_key->palette();
    muted.setColor(QPalette::WindowText, palette().color(QPalette::PlaceholderText));
    m_key->setPalette(muted);
    m_meta->setPalette(muted);
}

void TaskPage::changeEvent(QEvent *event)
{
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange)
        updateColors();
}

void TaskPage::setBusy(bool busy)
{
    m_busy = busy;
    m_form->setEnabled(!busy);
    m_start->setEnabled(m_task && !busy);
    m_run->setEnabled(m_task && !busy);
    if (busy) {
        m_run->setText(tr("Running…"));
        m_run->setAccessibleDescription(tr("A run of this task is in progress"));
        m_spinStep = 0;
        advanceSpinner();
        m_spinTimer->start();
    } else {
        m_spinTimer->stop();
        m_run->setIcon(QIcon());
        m_run->setText(tr("&Run"));
        m_run->setAccessibleDescription(QString());
    }
}

void TaskPage::advanceSpinner()
{
    const int size = style()->pixelMetric(QStyle::PM_ButtonIconSize, nullptr, this);
    m_run->setIcon(spinnerFrame(m_spinStep, size, palette().color(QPalette::Highlight)));
    m_spinStep = (m_spinStep + 1) % SpinnerSteps;
}

void TaskPage::setStartErrors(const StartError &error)
{
    if (!error.isError())
        return;
    if (error.code == StartError::Code::InvalidArguments && !error.fields.isEmpty()) {
        m_form->setErrors(error.fields);
        if (QWidget *first = m_form->firstInvalidEditor())
            first->setFocus(Qt::OtherFocusReason);
        m_error->hide();
        return;
    }
    m_error->setText(error.message.isEmpty() ? tr("The run could not start.") : error.message);
    m_error->show();
}

void TaskPage::clearMessages()
{
    m_error->hide();
    m_error->setText(QString());
    m_form->clearErrors();
}

QString TaskPage::errorMessage() const
{
    return m_error->isHidden() ? QString() : m_error->text();
}

void TaskPage::request(Action action)
{
    if (!m_task || m_busy || m_dialog)
        return;
    m_error->hide();
    if (!m_form->validate()) {
        if (QWidget *first = m_form->firstInvalidEditor()) {
            m_scroll->ensureWidgetVisible(first);
            first->setFocus(Qt::OtherFocusReason);
        }
        return;
    }
    const QJsonObject args = m_form->values();
    if (!m_task->isDangerous()) {
        askExpensive(action, args, false);
        return;
    }
    auto *dialog = new DangerConfirmDialog(*m_task, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    m_dialog = dialog;
    // finished() comes before accepted(): a follow-up dialog can take the slot.
    connect(dialog, &QDialog::finished, this, [this] { m_dialog.clear(); });
    const QString key = m_task->key;
    connect(dialog, &QDialog::accepted, this, [this, action, args, key] {
        // The task may have changed while the dialog was open.
        if (m_task && m_task->key == key)
            askExpensive(action, args, true);
    });
    dialog->open();
}

void TaskPage::askExpensive(Action action, const QJsonObject &args, bool confirmed)
{
    if (!m_task->expensive || !ExpensiveConfirmDialog::shouldAsk(m_task->key)) {
        finish(action, args, confirmed);
        return;
    }
    auto *dialog = new ExpensiveConfirmDialog(*m_task, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    m_dialog = dialog;
    // finished() comes before accepted(): a follow-up dialog can take the slot.
    connect(dialog, &QDialog::finished, this, [this] { m_dialog.clear(); });
    const QString key = m_task->key;
    connect(dialog, &QDialog::accepted, this, [this, action, args, confirmed, key] {
        if (m_task && m_task->key == key)
            finish(action, args, confirmed);
    });
    dialog->open();
}

void TaskPage::finish(Action action, const QJsonObject &args, bool confirmed)
{
    if (action == Action::Run)
        Q_EMIT runRequested(args, confirmed);
    else
        Q_EMIT startRequested(args, confirmed);
}

} // namespace taskdeck::ui
