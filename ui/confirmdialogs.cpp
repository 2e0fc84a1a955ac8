// SPDX-License-Identifier: MIT
#include "confirmdialogs.h"

#include "ui_dangerconfirmdialog.h"

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QStyle>
#include <QVBoxLayout>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

QString titleOf(const Task &task)
{
    return task.title.isEmpty() ? task.key : task.title;
}

QPixmap dialogIcon(const QWidget *widget, QStyle::StandardPixmap standard, const QString &name)
{
    const int size = widget->style()->pixelMetric(QStyle::PM_MessageBoxIconSize, nullptr, widget);
    return QIcon::fromTheme(name, widget->style()->standardIcon(standard, nullptr, widget))
        .pixmap(size, size);
}

} // namespace

DangerConfirmDialog::DangerConfirmDialog(const Task &task, QWidget *parent)
    : QDialog(parent)
    , m_ui(std::make_unique<Ui::DangerConfirmDialog>())
    , m_key(task.key)
{
    m_ui->setupUi(this);
    m_ui->iconLabel->setPixmap(dialogIcon(this, QStyle::SP_MessageBoxWarning, u"dialog-warning"_s));
    m_ui->titleLabel->setText(tr("“%1” is a dangerous task.").arg(titleOf(task)));
    QFont bold = m_ui->titleLabel->font();
    bold.setBold(true);
    m_ui->titleLabel->setFont(bold);
    m_ui->warningLabel->setText(task.danger);
    m_ui->promptLabel->setText(tr("Type the task key, %1, to confirm:").arg(task.key));
    m_ui->keyEdit->setPlaceholderText(task.key);
    m_ui->keyEdit->setAccessibleName(tr("Task key to confirm"));

    confirmButton()->setText(tr("&Confirm"));
    confirmButton()->setEnabled(false);
    cancelButton()->setDefault(false);
    connect(m_ui->keyEdit, &QLineEdit::textChanged, this,
            [this] { confirmButton()->setEnabled(isConfirmed()); });
    m_ui->keyEdit->setFocus();
}

DangerConfirmDialog::~DangerConfirmDialog() = default;

bool DangerConfirmDialog::isConfirmed() const
{
    return m_ui->keyEdit->text() == m_key;
}

QLineEdit *DangerConfirmDialog::keyEdit() const
{
    return m_ui->keyEdit;
}

QPushButton *DangerConfirmDialog::confirmButton() const
{
    return m_ui->buttonBox->button(QDialogButtonBox::Ok);
}

QPushButton *DangerConfirmDialog::cancelButton() const
{
    return m_ui->buttonBox->button(QDialogButtonBox::Cancel);
}

void DangerConfirmDialog::accept()
{
    // Return in the key field must not get past a key that does not match.
    if (isConfirmed())
        QDialog::accept();
}

ExpensiveConfirmDialog::ExpensiveConfirmDialog(const Task &task, QWidget *parent)
    : QDialog(parent)
    , m_key(task.key)
{
    setWindowTitle(tr("Run an expensive task?"));
    auto *layout = new QVBoxLayout(this);
    auto *top = new QHBoxLayout;
    auto *icon = new QLabel(this);
    icon->setPixmap(dialogIcon(this, QStyle::SP_MessageBoxQuestion, u"dialog-question"_s));
    icon->setAlignment(Qt::AlignTop);
    top->addWidget(icon);
    auto *text = new QLabel(tr("“%1” is expensive: it may take long or use a lot of "
                               "resources. Run it?")
                                .arg(titleOf(task)),
                            this);
    text->setWordWrap(true);
    text->setTextFormat(Qt::PlainText);
    top->addWidget(text, 1);
    layout->addLayout(top);

    m_dontAsk = new QCheckBox(tr("&Don't ask again for this task"), this);
    layout->addWidget(m_dontAsk);

    auto *buttons = new QDialogButtonBox(this);
    m_confirm = buttons->addButton(tr("&Run"), QDialogButtonBox::AcceptRole);
    m_cancel = buttons->addButton(QDialogButtonBox::Cancel);
    m_confirm->setDefault(true);
    connect(buttons, &QDialogButtonBox::accepted, this, &ExpensiveConfirmDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &ExpensiveConfirmDialog::reject);
    layout->addWidget(buttons);
}

ExpensiveConfirmDialog::~ExpensiveConfirmDialog() = default;

void ExpensiveConfirmDialog::accept()
{
    if (m_dontAsk->isChecked())
        setShouldAsk(m_key, false);
    QDialog::accept();
}

QString ExpensiveConfirmDialog::settingsKey(const QString &taskKey)
{
    return u"confirm/expensive/"_s + taskKey;
}

bool ExpensiveConfirmDialog::shouldAsk(const QString &taskKey)
{
    return QSettings().value(settingsKey(taskKey), true).toBool();
}

void ExpensiveConfirmDialog::setShouldAsk(const QString &taskKey, bool ask)
{
    QSettings settings;
    if (ask)
        settings.remove(settingsKey(taskKey));
    else
        settings.setValue(settingsKey(taskKey), false);
}

} // namespace taskdeck::ui
