// SPDX-License-Identifier: MIT
#include "settingsdialog.h"
#include "ui_settingsdialog.h"

#include <QFormLayout>
#include <QLabel>
#include <QPushButton>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

SettingsDialog::SettingsDialog(const Settings &settings, const QStringList &fixed, Theme theme,
                               QWidget *parent)
    : QDialog(parent)
    , m_ui(std::make_unique<Ui::SettingsDialog>())
    , m_settings(settings)
{
    m_ui->setupUi(this);
    m_ui->maxConcurrent->setValue(settings.engine.maxConcurrent);
    m_ui->timeout->setText(formatDuration(settings.engine.defaultTimeout));
    m_ui->bufferSize->setValue(settings.engine.bufferSize);
    m_ui->retentionDays->setValue(settings.retentionDays);
    m_ui->theme->addItem(tr("Follow the system"), themeName(Theme::System));
    m_ui->theme->addItem(tr("Light"), themeName(Theme::Light));
    m_ui->theme->addItem(tr("Dark"), themeName(Theme::Dark));
    m_ui->theme->setCurrentIndex(m_ui->theme->findData(themeName(theme)));
    m_ui->errorLabel->setVisible(false);
    QPalette errorPalette = m_ui->errorLabel->palette();
    errorPalette.setColor(QPalette::WindowText, QColor(0xd0, 0x30, 0x30));
    m_ui->errorLabel->setPalette(errorPalette);

    if (fixed.contains(u"TASK_MAX_CONCURRENT"_s))
        fix(m_ui->maxConcurrent, u"TASK_MAX_CONCURRENT"_s);
    if (fixed.contains(u"TASK_TIMEOUT"_s))
        fix(m_ui->timeout, u"TASK_TIMEOUT"_s);
    if (fixed.contains(u"TASK_BUFFER_SIZE"_s))
        fix(m_ui->bufferSize, u"TASK_BUFFER_SIZE"_s);
    if (fixed.contains(u"TASK_RETENTION_DAYS"_s))
        fix(m_ui->retentionDays, u"TASK_RETENTION_DAYS"_s);

    connect(m_ui->buttons, &QDialogButtonBox::accepted, this, &SettingsDialog::accept);
    connect(m_ui->buttons, &QDialogButtonBox::rejected, this, &SettingsDialog::reject);
}

SettingsDialog::~SettingsDialog() = default;

void SettingsDialog::fix(QWidget *editor, const QString &variable)
{
    editor->setEnabled(false);
    const QString why = tr("Set by %1 (environment or command line)").arg(variable);
    editor->setToolTip(why);
    editor->setAccessibleDescription(why);
    // Say it next to the editor too: a tooltip alone is easy to miss.
    if (auto *form = qobject_cast<QFormLayout *>(editor->parentWidget()->layout())) {
        int row = -1;
        QFormLayout::ItemRole role;
        form->getWidgetPosition(editor, &row, &role);
        if (row >= 0) {
            auto *note = new QLabel(why, editor->parentWidget());
            note->setEnabled(false);
            note->setObjectName(u"fixedNote_"_s + variable);
            form->insertRow(row + 1, QString(), note);
        }
    }
}

Theme SettingsDialog::theme() const
{
    return themeFromName(m_ui->theme->currentData().toString());
}

void SettingsDialog::accept()
{
    Settings next = m_settings;
    next.engine.maxConcurrent = m_ui->maxConcurrent->value();
    const auto timeout = parseDuration(m_ui->timeout->text());
    if (!timeout) {
        m_error = tr("Default time limit: \"%1\" is not a duration; use a number of seconds or "
                     "units such as 90s, 5m, 1h30m")
                      .arg(m_ui->timeout->text());
        m_ui->errorLabel->setText(m_error);
        m_ui->errorLabel->setVisible(true);
        m_ui->timeout->setFocus();
        return;
    }
    next.engine.defaultTimeout = *timeout;
    next.engine.bufferSize = m_ui->bufferSize->value();
    next.retentionDays = m_ui->retentionDays->value();
    m_error.clear();
    m_settings = next;
    QDialog::accept();
}

} // namespace taskdeck::ui
