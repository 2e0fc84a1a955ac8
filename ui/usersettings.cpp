// SPDX-License-Identifier: MIT
#include "usersettings.h"

#include <QSettings>

using namespace Qt::StringLiterals;

namespace taskdeck::ui {

namespace {

const QString kMaxConcurrentVariable = u"TASK_MAX_CONCURRENT"_s;
const QString kTimeoutVariable = u"TASK_TIMEOUT"_s;
const QString kBufferSizeVariable = u"TASK_BUFFER_SIZE"_s;
const QString kRetentionVariable = u"TASK_RETENTION_DAYS"_s;

std::optional<qint64> savedNumber(const QSettings &saved, const char *key, qint64 min, qint64 max)
{
    const QVariant value = saved.value(QLatin1StringView(key));
    if (!value.isValid())
        return std::nullopt;
    bool ok = false;
    const qint64 number = value.toLongLong(&ok);
    if (!ok || number < min || number > max)
        return std::nullopt;
    return number;
}

} // namespace

void UserSettings::applySaved(Settings &settings, const QStringList &fixed)
{
    const QSettings saved;
    if (!fixed.contains(kMaxConcurrentVariable)) {
        if (const auto v = savedNumber(saved, kMaxConcurrent, 0, 1024))
            settings.engine.maxConcurrent = int(*v);
    }
    if (!fixed.contains(kTimeoutVariable)) {
        if (const auto v = savedNumber(saved, kDefaultTimeoutMs, 1, qint64(365) * 24 * 3600 * 1000))
            settings.engine.defaultTimeout = std::chrono::milliseconds(*v);
    }
    if (!fixed.contains(kBufferSizeVariable)) {
        if (const auto v = savedNumber(saved, kBufferSize, 1, 1000000))
            settings.engine.bufferSize = int(*v);
    }
    if (!fixed.contains(kRetentionVariable)) {
        if (const auto v = savedNumber(saved, kRetentionDays, 0, 36500))
            settings.retentionDays = int(*v);
    }
}

void UserSettings::save(const Settings &settings, const QStringList &fixed)
{
    QSettings saved;
    if (!fixed.contains(kMaxConcurrentVariable))
        saved.setValue(QLatin1StringView(kMaxConcurrent), settings.engine.maxConcurrent);
    if (!fixed.contains(kTimeoutVariable))
        saved.setValue(QLatin1StringView(kDefaultTimeoutMs),
                       qint64(settings.engine.defaultTimeout.count()));
    if (!fixed.contains(kBufferSizeVariable))
        saved.setValue(QLatin1StringView(kBufferSize), settings.engine.bufferSize);
    if (!fixed.contains(kRetentionVariable))
        saved.setValue(QLatin1StringView(kRetentionDays), settings.retentionDays);
}

Theme UserSettings::theme()
{
    return themeFromName(QSettings().value(QLatin1StringView(kTheme)).toString());
}

void UserSettings::setTheme(Theme theme)
{
    QSettings().setValue(QLatin1StringView(kTheme), themeName(theme));
}

QStringList fixedSettingVariables(const QProcessEnvironment &env, const QMap<QString, QString> &flags)
{
    QStringList fixed;
    for (const QString &variable : {kMaxConcurrentVariable, kTimeoutVariable, kBufferSizeVariable,
                                    kRetentionVariable}) {
        if (env.contains(variable) || flags.contains(variable))
            fixed.append(variable);
    }
    return fixed;
}

} // namespace taskdeck::ui
