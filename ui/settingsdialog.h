// SPDX-License-Identifier: MIT
#pragma once

#include "engineconfig.h"
#include "theme.h"

#include <QDialog>
#include <QStringList>

#include <memory>

QT_BEGIN_NAMESPACE
namespace Ui { class SettingsDialog; }
QT_END_NAMESPACE

namespace taskdeck::ui {

/*!
 * Runs at once, default time limit, log lines kept, history retention and theme. A value
 * fixed by the environment or a flag is shown with the variable that sets it and cannot be
 * edited. accept() checks the values; the caller saves settings() and theme().
 */
class SettingsDialog final : public QDialog
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(SettingsDialog)

public:
    SettingsDialog(const Settings &settings, const QStringList &fixed, Theme theme,
                   QWidget *parent = nullptr);
    ~SettingsDialog() override;

    Settings settings() const { return m_settings; }
    Theme theme() const;
    /*! Why the last accept() refused, naming the field; empty when it accepted. */
    QString error() const { return m_error; }

    void accept() override;

private:
    void fix(QWidget *editor, const QString &variable);

    std::unique_ptr<Ui::SettingsDialog> m_ui;
    Settings m_settings;
    QString m_error;
};

} // namespace taskdeck::ui
